"""Each stage's wall time, for the run summary (`make run`, `python -m pipelines.summary`).

Every stage, run by `dvc repro` or by train.py, writes `outputs/stage_times/<stage>.json`
(Layout.stage_times) atomically when it succeeds. The folder is no DVC output or metric: a time
differs on every run, and a hash that changes every run would rewrite dvc.lock and show as a
changed metric on a run that reproduced every result. A stage DVC skipped keeps the time of
its last run, which the summary says.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone

from pipelines.io import write_json
from pipelines.layout import Layout


@contextmanager
def timed(layout: Layout, stage: str) -> Iterator[None]:
    """Records the stage's wall time when the block finishes without an error (a failed
    stage's partial time would pass for a run)."""
    started = time.perf_counter()
    yield
    record(layout, stage, time.perf_counter() - started)


def record(layout: Layout, stage: str, seconds: float) -> None:
    finished = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_json(
        layout.stage_times / f"{stage}.json",
        {"stage": stage, "seconds": round(seconds, 3), "finished_at": finished},
    )


def read(layout: Layout, stages: Sequence[str]) -> dict[str, float]:
    """Seconds per stage, in `stages`' order, for the stages that have a record."""
    times = {}
    for stage in stages:
        path = layout.stage_times / f"{stage}.json"
        if path.is_file():
            times[stage] = float(json.loads(path.read_text())["seconds"])
    return times


def wall_time_line(times: dict[str, float]) -> str:
    """`wall time: ingest 2.1 s, ..., export 0.8 s; total 3 min 12 s`."""
    parts = ", ".join(f"{stage} {_duration(seconds)}" for stage, seconds in times.items())
    return f"wall time per stage (its last run): {parts}; total {_duration(sum(times.values()))}"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"
