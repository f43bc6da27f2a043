"""The clean stage around a modality's rule engine (the text and image rules): read the
ingested splits, apply the rules, write the cleaned splits, the quarantine (Parquet, every
removed row with its rule and split) and the metrics (rows in and out, per-rule counts, the
engine's own figures)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pipelines.core.rules import split_totals
from pipelines.io import no_cache_files, read_split, staged_outputs, write_json, write_split
from pipelines.layout import SPLITS, Layout

if TYPE_CHECKING:
    from datasets import Dataset

Cleaner = Callable[[dict[str, "Dataset"]], tuple[dict[str, "Dataset"], "Dataset", dict[str, Any]]]


def clean_and_publish(
    layout: Layout,
    clean: Cleaner,
    figures: Callable[[dict[str, Any]], dict[str, Any]],
    features: dict[str, Any],
) -> dict[str, Any]:
    """Run `clean` (splits -> cleaned splits, quarantine, per-split report) on the ingested
    splits and publish its outputs; the metrics add `figures(report)` to the shared counts,
    and `features` becomes the cleaned folder's features.json."""
    outputs = (layout.cleaned, layout.quarantine, layout.clean_metrics)
    with no_cache_files():
        splits = {name: read_split(layout.split(layout.ingested, name)) for name in SPLITS}
        cleaned, quarantine, report = clean(splits)
        removed = split_totals(report)
        metrics = {
            "rows_in": {name: s["rows_in"] for name, s in report.items()},
            "rows_out": {name: s["rows_out"] for name, s in report.items()},
            "quarantined": sum(removed.values()),
            "removed_by_rule": removed,
            **figures(report),
            "splits": report,
        }
        with staged_outputs(layout.staging, *outputs) as (folder, quarantine_file, metrics_file):
            folder.mkdir()
            for name, ds in cleaned.items():
                write_split(layout.split(folder, name), ds)
            write_json(folder / "features.json", features)
            quarantine.to_parquet(str(quarantine_file))
            write_json(metrics_file, metrics)
    return metrics
