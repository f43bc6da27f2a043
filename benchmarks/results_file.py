"""Where a benchmark writes its figures: `outputs/benchmarks/` (gitignored) by default, so a
run on another machine never silently overwrites the committed record; `--record` writes
`benchmarks/results/`, the figures the README quotes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

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
    path = (RECORDED if record else SCRATCH) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path.relative_to(REPO)}")
    return path
