"""The profile stage's outputs, whatever the modality: a report that misses a quality gate is
written to the diagnosis folder and ends the stage in one line; one that passes is published
with its pages (profile.json, the modality's PNG/HTML) and the summary metrics."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipelines.io import gates_failed, staged_outputs, write_json
from pipelines.layout import Layout

# writes the modality's pictures and page of (report, failures) into a folder
Pages = Callable[[dict[str, Any], list[str], Path], None]


def split_summary(report: dict[str, Any], worst: tuple[str, ...]) -> dict[str, Any]:
    """The metrics' common part: rows per split and, for each figure in `worst`, its highest
    value over the splits as `max_<figure>` (a figure a split could not measure counts 0)."""
    per_split = report["splits"]
    return {
        "rows": {name: s["rows"] for name, s in per_split.items()},
        **{f"max_{f}": max(_measured(s[f]) for s in per_split.values()) for f in worst},
    }


def _measured(value: float | None) -> float:
    return 0.0 if value is None else value


def publish_profile(
    layout: Layout,
    report: dict[str, Any],
    failures: list[str],
    summary: dict[str, Any],
    pages: Pages,
) -> dict[str, Any]:
    """Publish the report and `summary` (the metrics), or raise naming the first gate
    missed after writing the report where the error says."""
    if failures:
        _write(report, failures, layout.profile_diagnosis, pages)
        raise gates_failed(layout.ingested, failures, layout.profile_diagnosis)
    outputs = (layout.profile_report, layout.profile_metrics)
    with staged_outputs(layout.staging, *outputs) as (folder, metrics):
        _write(report, failures, folder, pages)
        write_json(metrics, summary)
    return summary


def _write(report: dict[str, Any], failures: list[str], folder: Path, pages: Pages) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "profile.json", report)
    pages(report, failures, folder)
