"""Reuse of the data stages' outputs across sweep trials.

Every trial of a sweep over model/training keys would otherwise re-run ingest, profile, clean
and augment on identical inputs. The outputs of those four stages are a function of the data
config, the seed and the stages' code (the same things dvc.yaml declares for them), so they are
cached under `<cache_root>/<sha256 of those>/` and copied into each trial's run directory.
A cache entry appears atomically (written aside, then renamed), so parallel trials and a killed
sweep never leave a half-written entry that a later trial would trust.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from pipelines.config import PipelineConfig, to_container
from pipelines.layout import Layout

DATA_STAGES = ("ingest", "profile", "clean", "augment")
_REPO = Path(__file__).resolve().parents[2]
# the code the four stages run (dvc.yaml's deps for them)
_CODE = (
    "stages/ingest.py",
    "stages/profile.py",
    "stages/clean.py",
    "stages/augment.py",
    "pipelines/data",
    # every modality's plug-ins (data.modality picks one; all are hashed, the safe side)
    "pipelines/modalities",
    "pipelines/profiling.py",
    "pipelines/plots.py",
    "pipelines/io.py",
    "pipelines/config.py",
    "pipelines/schema",
)
_COMPLETE = "COMPLETE"


def _code_digest() -> str:
    digest = hashlib.sha256()
    for name in _CODE:
        path = _REPO / name
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            if file.is_file():
                digest.update(str(file.relative_to(_REPO)).encode())
                digest.update(file.read_bytes())
    return digest.hexdigest()


def data_key(cfg: PipelineConfig) -> str:
    payload = {"data": to_container(cfg.data), "seed": cfg.seed, "code": _code_digest()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)
    else:
        shutil.copy2(source, target)


def run_data_stages(
    cfg: PipelineConfig, layout: Layout, cache_root: Path, run_stage: Callable[[str], None]
) -> bool:
    """Restore the data stages' outputs into `layout` from the cache, or run the stages and
    fill the cache. True when the cache was used."""
    entry = cache_root / data_key(cfg)
    cached = Layout(entry)
    if (entry / _COMPLETE).is_file():
        for source, target in zip(
            cached.data_stage_outputs, layout.data_stage_outputs, strict=True
        ):
            if source.exists():
                _copy(source, target)
        return True
    for name in DATA_STAGES:
        run_stage(name)
    aside = cache_root / f".{entry.name}.{os.getpid()}.tmp"
    shutil.rmtree(aside, ignore_errors=True)
    for source, target in zip(
        layout.data_stage_outputs, Layout(aside).data_stage_outputs, strict=True
    ):
        if source.exists():
            _copy(source, target)
    (aside / _COMPLETE).write_text("")
    try:
        aside.rename(entry)
    except OSError:  # another trial filled the same entry first: theirs is as good
        shutil.rmtree(aside, ignore_errors=True)
    return False
