"""What is wrong with a data file, in one line naming the file, the line or byte and what was
expected. `utf8_problem` serves every text format (the text modality checks its files up front
with it); The `datasets` CSV builder (pandas underneath) reports a bad file as "An error
occurred while generating the dataset" and quietly renames a repeated column ("income",
"income.1"), so a later check blames a declared column instead. This module reads the file
itself with the standard library's `csv` reader (the same dialect as the builder's defaults:
comma, double-quote quoting):

- `check_header`: before the builder runs; reads the first record only, so it is cheap on a
  file of any size.
- `diagnose`: after the builder failed; streams the file once for the first byte that is not
  UTF-8 and the first row with more fields than the header.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import io
import lzma
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from pipelines.errors import PipelineError

_CHUNK = 1 << 20
# the compressions pandas infers from the suffix, which the builder therefore reads
_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def _open_bytes(path: Path) -> IO[bytes] | None:
    opener = _OPENERS.get(path.suffix.lower())
    if opener is not None:
        return opener(path, "rb")  # type: ignore[return-value]
    if path.suffix.lower() in (".zip", ".zst", ".tar"):
        return None  # archives: left to the builder
    return path.open("rb")


def _records(text: IO[str]) -> Iterator[tuple[int, list[str]]]:
    """(line number where the record starts, its fields); a quoted field may span lines."""
    reader = csv.reader(text)
    start = 1
    for fields in reader:
        yield start, fields
        start = reader.line_num + 1


def check_header(path: Path) -> None:
    """Refuse a header that names a column twice (the builder would rename the second copy
    and a declared column would then look missing)."""
    raw = _open_bytes(path)
    if raw is None:
        return
    with raw, io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="") as text:
        first = next(_records(text), None)
    if first is None:
        return
    header = [name.strip() for name in first[1]]
    seen: dict[str, int] = {}
    for position, name in enumerate(header, start=1):
        if name in seen:
            raise PipelineError(
                f"{path}: column {name!r} appears twice in the header (columns {seen[name]} and "
                f"{position}); expected every column name once"
            )
        seen[name] = position


def _first_non_utf8(raw: IO[bytes]) -> tuple[int, int, bytes] | None:
    """(byte offset, line, the offending bytes) of the first invalid UTF-8, or None."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, lines = 0, 0
    while True:
        chunk = raw.read(_CHUNK)
        final = not chunk
        try:
            decoder.decode(chunk, final=final)
        except UnicodeDecodeError as err:
            # the decoder may hold back a partial character from the previous chunk
            pending = len(err.object) - len(chunk)
            position = err.start - pending
            line = lines + chunk[: max(position, 0)].count(b"\n") + 1
            return offset + position, line, err.object[err.start : err.end]
        if final:
            return None
        offset += len(chunk)
        lines += chunk.count(b"\n")


def _first_long_row(path: Path) -> tuple[int, int, int] | None:
    """(line, its field count, the header's) of the first row with more fields than the header
    (a shorter row is read with missing values; a longer one has no column to go to)."""
    raw = _open_bytes(path)
    if raw is None:
        return None
    with raw, io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="") as text:
        records = _records(text)
        header = next(records, None)
        if header is None:
            return None
        width = len(header[1])
        for line, fields in records:
            if len(fields) > width:
                return line, len(fields), width
    return None


def utf8_problem(path: Path) -> str | None:
    """The one line naming the first byte of `path` that is not UTF-8 (offset, line, value),
    or None when the whole file decodes."""
    raw = _open_bytes(path)
    if raw is None:
        return None
    with raw:
        bad = _first_non_utf8(raw)
    if bad is None:
        return None
    offset, line, data = bad
    return (
        f"{path}: not UTF-8 (byte {offset} is 0x{data.hex()}, line {line}); expected a UTF-8 "
        "file (re-save it as UTF-8, e.g. `iconv -f cp1252 -t utf-8`)"
    )


def diagnose(path: Path) -> str | None:
    """The one line saying why the builder could not read the CSV file `path`, or None when
    this module finds nothing wrong (the caller then reports the builder's own message)."""
    problem = utf8_problem(path)
    if problem is not None:
        return problem
    long_row = _first_long_row(path)
    if long_row is not None:
        line, count, width = long_row
        return (
            f"{path}: line {line} has {count} fields but the header has {width}; expected "
            "every row to have the header's fields (a comma inside a value needs quotes)"
        )
    return None
