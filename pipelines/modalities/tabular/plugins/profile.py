"""The tabular profile stage: quality report (JSON metrics, PNG, HTML) and the declared quality
gates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.config import PipelineConfig
from pipelines.core.profile_stage import publish_profile
from pipelines.data.schema_inference import stage_schema
from pipelines.io import read_split
from pipelines.layout import SPLITS, Layout
from pipelines.plots import profile_html, profile_png
from pipelines.profiling import check_gates, profile_splits


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    # the report needs whole columns (quantiles, drift, correlations): the splits are read
    # into pandas here, the one data stage that still holds a table in memory
    splits = {name: read_split(layout.split(layout.ingested, name)).to_pandas() for name in SPLITS}
    report = profile_splits(splits, stage_schema(cfg, layout))
    failures = check_gates(report, cfg.data.profile.gates)
    keys = ("rows", "n_features", "positive_fraction", "max_missing_fraction", "max_drift_psi")
    summary = publish_profile(layout, report, failures, {k: report[k] for k in keys}, _pages)
    if report["missing_label"]:
        print(
            f"profile: label column {report['label_column']!r} is missing in "
            f"{report['missing_label']} rows; clean quarantines them (rule missing_label)"
        )
    return summary


def _pages(report: dict[str, Any], failures: list[str], folder: Path) -> None:
    profile_png(report, folder / "profile.png")
    profile_html(report, folder / "profile.png", folder / "profile.html", failures)
