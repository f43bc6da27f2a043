"""profile: quality report (JSON metrics, PNG, HTML) and the declared quality gates; a failed
gate stops the pipeline with the report written beside the inputs.

The modality's plug-in does the work (pipelines/modalities/registry.py picks it by
data.modality); this module is the DVC stage's entry point."""

from __future__ import annotations

from typing import Any

from pipelines.config import PipelineConfig
from pipelines.layout import Layout
from pipelines.modalities.registry import run_stage
from stages._cli import main


def run(cfg: PipelineConfig, layout: Layout) -> Any:
    return run_stage("profile", cfg, layout)


if __name__ == "__main__":
    main("profile", run)
