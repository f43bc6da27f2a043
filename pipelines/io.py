"""Atomic artifact writing: a stage writes into a staging folder and its outputs are moved
into place only when the whole stage succeeded, so DVC never caches half a result.

Data between stages: one Arrow IPC stream file per split (`data/clean/train.arrow`), the
format Hugging Face `datasets` itself keeps its tables in. `Dataset.from_file` memory-maps
it, so a 10M-row split is paged in as it is read rather than loaded, and batched
`Dataset.map`/`filter` stream over it. Chosen over `Dataset.save_to_disk` folders because
their state.json records a fingerprint hashed from file modification times: the same rows
would get a new DVC hash on every run and dvc.lock would never settle (a fresh clone's
`dvc repro` must leave it as committed). Chosen over Parquet because Parquet cannot be
memory-mapped: `datasets` would convert every split into an Arrow copy on every read.
Quarantine stays Parquet: it is a report for people, which no stage reads."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipelines.errors import PipelineError

if TYPE_CHECKING:
    import pyarrow as pa
    from datasets import Dataset

SPLIT_SUFFIX = ".arrow"
# rows per record batch when a split is streamed into its file: bounds the memory a write
# holds (~50k rows x 25 columns x 8 bytes = 10 MB) while keeping per-batch overhead small
WRITE_BATCH = 50_000
# rows gathered per `take` when a split is written in a different order than it is stored
TAKE_ROWS = 1_000_000


@contextmanager
def staged_outputs(staging_root: Path, *finals: Path) -> Iterator[list[Path]]:
    """Yield one temporary path per final output; publish them all on success."""
    staging_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="stage-", dir=staging_root))
    temps = [staging / f"{index}-{final.name}" for index, final in enumerate(finals)]
    try:
        yield temps
        missing = [
            str(final) for temp, final in zip(temps, finals, strict=True) if not temp.exists()
        ]
        if missing:
            raise RuntimeError(f"stage finished without writing {', '.join(missing)}")
        for temp, final in zip(temps, finals, strict=True):
            final.parent.mkdir(parents=True, exist_ok=True)
            _remove(final)
            os.replace(temp, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if staging_root.exists() and not any(staging_root.iterdir()):
            staging_root.rmdir()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` whole or not at all: into a temporary file in the same folder
    (so the move cannot cross file systems), flushed to disk, then moved over `path` with
    os.replace, which is atomic. A reader sees the old file or the new one, never a truncated
    one, and a failure leaves the old file and no temporary behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp's file is private (0600); keep the replaced file's mode, or a plain file's
        os.chmod(temp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def write_json(path: Path, payload: Any) -> None:
    write_text_atomic(
        path, json.dumps(payload, indent=2, sort_keys=True, default=_jsonable) + "\n"
    )


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read_json(path: Path) -> Any:
    if not path.is_file():
        raise PipelineError(f"{path}: missing input (run the earlier stage first)")
    return json.loads(path.read_text())


@contextmanager
def scratch_dir(staging_root: Path) -> Iterator[Path]:
    """A private folder under the staging root for intermediate Arrow files (`Dataset.map`
    results, `load_dataset` caches): removed on exit, whatever happened. Every map names its
    cache file in here; left to itself `datasets` would write it beside its input, i.e. into
    an earlier stage's DVC output. Quiets `datasets`' progress bars for the stage."""
    quiet_datasets()
    staging_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="work-", dir=staging_root))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if staging_root.exists() and not any(staging_root.iterdir()):
            with contextlib.suppress(OSError):  # a concurrent stage's staging folder
                staging_root.rmdir()


def quiet_datasets() -> None:
    """The stages report progress themselves (pipelines.progress); `datasets`' per-map
    progress bars would interleave with it."""
    import datasets

    datasets.disable_progress_bars()


def read_split(path: Path) -> Dataset:
    """A split as a memory-mapped `datasets.Dataset` (nothing is loaded until read)."""
    if not path.is_file():
        raise PipelineError(f"{path}: missing input (run the earlier stage first)")
    from datasets import Dataset

    quiet_datasets()
    return Dataset.from_file(str(path), in_memory=False)


def arrow_column(dataset: Dataset, name: str) -> pa.ChunkedArray:
    """One column of a dataset, index selections applied (one column at a time keeps a global
    statistic's memory to 8 bytes a row)."""
    # project first: `[:]` on an index selection gathers every column it holds
    return dataset.select_columns([name]).with_format("arrow")[:].column(name)


def consecutive(indices: np.ndarray) -> range | None:
    """`indices` as a range when they are one run of consecutive rows (all rows kept, or a
    time split of already ordered rows), else None."""
    spans = len(indices) and indices[-1] - indices[0] == len(indices) - 1
    if spans and (len(indices) == 1 or bool((np.diff(indices) == 1).all())):
        return range(int(indices[0]), int(indices[-1]) + 1)
    return None


def read_columns(path: Path, columns: list[str] | None = None) -> pa.Table:
    """A split's columns as a pyarrow Table over the memory map (zero copy)."""
    table = read_split(path).data.table
    if columns is None:
        return table
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise PipelineError(f"{path}: column {missing[0]!r} missing (run the earlier stage again)")
    return table.select(columns)


def write_split(path: Path, dataset: Dataset, indices: np.ndarray | None = None) -> None:
    """Stream `dataset` (or its rows at `indices`, in that order) into one Arrow file, a
    record batch of WRITE_BATCH rows at a time: never more than a batch is held, and the file
    is the same bytes however the input was chunked (one map file or num_proc shards).

    Rows are gathered with pyarrow's vectorised `take`, not `Dataset.select`: reading a
    selection back through `datasets` gathers row by row (one 1-row slice per index), which
    is minutes at 10M rows. So no dataset here carries an index mapping."""
    from datasets.arrow_writer import ArrowWriter

    path.parent.mkdir(parents=True, exist_ok=True)
    run = consecutive(indices) if indices is not None else None
    if run is not None:
        dataset, indices = dataset.select(run), None  # a slice of the memory map
    writer = ArrowWriter(features=dataset.features, path=str(path), writer_batch_size=WRITE_BATCH)
    try:
        for batch in iter_batches(dataset, indices):
            writer.write_table(batch.combine_chunks())
        writer.finalize()
    finally:
        writer.close()


def iter_batches(dataset: Dataset, indices: np.ndarray | None = None) -> Iterator[pa.Table]:
    """`dataset`'s rows (or those at `indices`) as Arrow tables of up to WRITE_BATCH rows."""
    import pyarrow as pa

    table = dataset.data.table
    if indices is None:
        for start in range(0, len(table), WRITE_BATCH):
            yield table.slice(start, WRITE_BATCH)
        return
    # `take` on a many-chunk table first concatenates each column it gathers from, so its
    # cost grows with the table, not with the rows taken: gather TAKE_ROWS at a time (a few
    # hundred MB) and hand them out in WRITE_BATCH slices, or a 10M-row split of shuffled
    # rows costs the table's size 200 times over
    for start in range(0, len(indices), TAKE_ROWS):
        chunk = pa.array(indices[start : start + TAKE_ROWS], type=pa.int64())
        taken = table.take(chunk)
        for offset in range(0, len(taken), WRITE_BATCH):
            yield taken.slice(offset, WRITE_BATCH)
        del taken


def write_frame(path: Path, frame: pd.DataFrame) -> None:
    """A small in-memory table (the resampled train split) as a split file."""
    from datasets import Dataset

    write_split(path, Dataset.from_pandas(frame, preserve_index=False))


def gates_failed(source: Path, failures: list[str], diagnosis: Path) -> PipelineError:
    """The one line a failed quality gate ends a profile with, whatever the modality."""
    more = f" (+{len(failures) - 1} more)" if len(failures) > 1 else ""
    return PipelineError(
        f"{source}: quality gate failed: {failures[0]}{more}; report in {diagnosis}"
    )


def publish_splits(
    staging: Path, ingested: Path, dataset: Dataset, splits: dict[str, np.ndarray], about: dict
) -> dict[str, int]:
    """ingest's outputs, whatever the modality: one Arrow file per split and schema.json
    (`about` plus the rows per split), published together or not at all."""
    rows = {name: len(indices) for name, indices in splits.items()}
    with staged_outputs(staging, ingested) as (out,):
        for name, indices in splits.items():
            write_split(out / f"{name}.arrow", dataset, indices)
        write_json(out / "schema.json", {**about, "rows": rows})
    return rows


@contextmanager
def no_cache_files() -> Iterator[None]:
    """The text and image rules' maps would otherwise write cache-*.arrow files beside their source:
    inside data/ingested, a DVC output. Without caching, `datasets` keeps them in a temporary
    folder it removes at exit."""
    import datasets

    was_enabled = datasets.is_caching_enabled()
    datasets.disable_caching()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_caching()
