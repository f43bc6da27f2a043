"""Where a benchmark writes its figures: `outputs/benchmarks/` (gitignored) by default, so a
run on another machine never silently overwrites the committed record; `--record` writes
`benchmarks/results/`, the figures the README quotes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pipelines.io import write_text_atomic

REPO = Path(__file__).resolve().parent.parent
RECORDED = REPO / "benchmarks" / "results"
SCRATCH = REPO / "outputs" / "benchmarks"


def add_record_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--record",
        action="store_true",
        help=f"write the committed record in {RECORDED.relative_to(REPO)}/ instead of "
        f"{SCRATCH.relative_to(REPO)}/",
    )


def write_results(name: str, payload: dict[str, Any], record: bool) -> Path:
    """Write the figures whole or not at all: a benchmark killed while writing must not leave
    the committed record truncated."""
    path = (RECORDED if record else SCRATCH) / f"{name}.json"
    write_text_atomic(path, json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path.relative_to(REPO)}")
    return path
