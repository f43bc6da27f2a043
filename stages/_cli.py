"""The command line every stage shares: `python -m stages.<name> [key=value ...]`.

A stage reads params.yaml, the composed Hydra config that DVC tracks (DVC's Hydra integration
writes it from conf/ on `dvc exp run`), so editing params.yaml and `dvc repro` agree. Dotlist
overrides apply on top for ad-hoc runs. Any PipelineError ends the process with exit code 2
and a single line on stderr."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.config import PipelineConfig, load_params
from pipelines.errors import PipelineError
from pipelines.layout import Layout
from pipelines.modalities.registry import run_stage
from pipelines.stage_times import timed

StageRun = Callable[[PipelineConfig, Layout], Any]


def main(name: str, run: StageRun, argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m stages.{name}")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. train.lr=0.001")
    parser.add_argument("--params", default="params.yaml", help="composed config (params.yaml)")
    parser.add_argument("--root", default=".", help="where artifacts are read and written")
    args = parser.parse_args(argv)
    try:
        cfg = load_params(args.params, args.overrides)
        run(cfg, Layout(Path(args.root)))
    except PipelineError as err:
        print(f"error: {name}: {err}", file=sys.stderr)
        sys.exit(2)


@dataclass(frozen=True)
class Stage:
    """One DVC stage: `run(cfg, layout)` runs the configured modality's plug-in for it, and
    `run.main()` is its command line. The stages know no modality: the registry picks it."""

    name: str

    def __call__(self, cfg: PipelineConfig, layout: Layout) -> Any:
        with timed(layout, self.name):  # for the run summary's wall times
            return run_stage(self.name, cfg, layout)

    def main(self, argv: list[str] | None = None) -> None:
        main(self.name, self, argv)
