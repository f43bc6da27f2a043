"""The one place that maps a data modality's name to its plug-in.

A modality is a package with one module per stage, `<package>.plugins.<stage>`, each exposing
`run(cfg, layout) -> metrics`, and a `<package>.checks` module whose `check(cfg, source)`
refuses configs the modality cannot run. The stages look the plug-in up here by
`data.modality`, so they never name a modality, and adding one is a package plus a line in
`BUILT_IN` (or, for a package outside this repository, its importable name as `data.modality`).
Plug-ins are imported when a stage asks for them: a table run never imports torchvision-style
image code, and `train.py --cfg job` stays fast."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from pipelines.errors import PipelineError

if TYPE_CHECKING:
    from pipelines.config import PipelineConfig
    from pipelines.layout import Layout

STAGES = ("ingest", "profile", "clean", "augment", "train", "quantize", "evaluate", "export")

StageRun = Callable[["PipelineConfig", "Layout"], Any]

BUILT_IN = {
    "tabular": "pipelines.modalities.tabular",
    "text": "pipelines.modalities.text",
    "image": "pipelines.modalities.image",
    "timeseries": "pipelines.modalities.timeseries",
}


@dataclass(frozen=True)
class Modality:
    """A modality's plug-in: where its per-stage modules live."""

    name: str
    package: str

    def stage(self, stage: str) -> StageRun:
        if stage not in STAGES:
            raise PipelineError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
        return _module(self, f"plugins.{stage}").run

    def fact(self, name: str, default: str = "") -> str:
        """A constant the plug-in package states for reports (e.g. `ROWS`, what one row is
        called), or `default` when it states none."""
        return getattr(importlib.import_module(self.package), name, default)

    def check(self, cfg: PipelineConfig, source: str) -> None:
        """The modality's own config rules (which models it takes, its section's invariants)."""
        _module(self, "checks").check(cfg, source)


def modality(name: str) -> Modality:
    """`data.modality`: a built-in name, or the importable name of a plug-in package of your
    own (on PYTHONPATH)."""
    if name in BUILT_IN:
        return Modality(name, BUILT_IN[name])
    if _importable(name):
        return Modality(name, name)
    raise PipelineError(
        f"config key 'data.modality' = {name!r}: expected one of {', '.join(BUILT_IN)} or the "
        "name of a plug-in package on PYTHONPATH (one with plugins/<stage>.py and checks.py)"
    )


def _importable(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):  # a missing parent package, or an invalid name
        return False


def run_stage(stage: str, cfg: PipelineConfig, layout: Layout) -> Any:
    """What every `stages/<stage>.py` does: run the configured modality's plug-in for it."""
    return modality(cfg.data.modality).stage(stage)(cfg, layout)


def _module(plugin: Modality, part: str) -> ModuleType:
    name = f"{plugin.package}.{part}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name is not None and name.startswith(err.name):
            raise PipelineError(
                f"config key 'data.modality' = {plugin.name!r}: module {name} not found; a "
                "modality plug-in provides plugins/<stage>.py for each stage and checks.py"
            ) from err
        raise
