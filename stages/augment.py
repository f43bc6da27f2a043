"""augment: the train split topped up or resampled by the data config's augment policy.

The modality's plug-in does the work (pipelines/modalities/registry.py picks it by
data.modality); this module is the DVC stage's entry point."""

from __future__ import annotations

from typing import Any

from pipelines.config import PipelineConfig
from pipelines.layout import Layout
from pipelines.modalities.registry import run_stage
from stages._cli import main


def run(cfg: PipelineConfig, layout: Layout) -> Any:
    return run_stage("augment", cfg, layout)


if __name__ == "__main__":
    main("augment", run)
