"""The tabular profile stage: quality report (JSON metrics, PNG, HTML) and the declared quality
gates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.config import PipelineConfig
from pipelines.io import gates_failed, read_split, staged_outputs, write_json
from pipelines.layout import SPLITS, Layout
from pipelines.plots import profile_html, profile_png
from pipelines.profiling import check_gates, profile_splits


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    # the report needs whole columns (quantiles, drift, correlations): the splits are read
    # into pandas here, the one data stage that still holds a table in memory
    splits = {name: read_split(layout.split(layout.ingested, name)).to_pandas() for name in SPLITS}
    report = profile_splits(splits, cfg.data.schema)
    failures = check_gates(report, cfg.data.profile.gates)
    if failures:
        _write_report(report, failures, layout.profile_diagnosis)
        raise gates_failed(layout.ingested, failures, layout.profile_diagnosis)
    if report["missing_label"]:
        print(
            f"profile: label column {report['label_column']!r} is missing in "
            f"{report['missing_label']} rows; clean quarantines them (rule missing_label)"
        )
    summary = {
        k: report[k]
        for k in (
            "rows",
            "n_features",
            "positive_fraction",
            "max_missing_fraction",
            "max_drift_psi",
        )
    }
    with staged_outputs(layout.staging, layout.profile_report, layout.profile_metrics) as (
        folder,
        metrics,
    ):
        _write_report(report, failures, folder)
        write_json(metrics, summary)
    return summary


def _write_report(report: dict[str, Any], failures: list[str], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "profile.json", report)
    profile_png(report, folder / "profile.png")
    profile_html(report, folder / "profile.png", folder / "profile.html", failures)

