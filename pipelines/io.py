"""Atomic artifact writing: a stage writes into a staging folder and its outputs are moved
into place only when the whole stage succeeded, so DVC never caches half a result."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.errors import PipelineError


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


def write_parquet(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)


def read_parquet(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise PipelineError(f"{path}: missing input (run the earlier stage first)")
    return pd.read_parquet(path)
