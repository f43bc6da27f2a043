"""clean for text: the declarative rules of data.text.clean; every removed row goes to
quarantine with its rule, per-rule counts to metrics."""

from __future__ import annotations

from typing import Any

from pipelines.config import PipelineConfig
from pipelines.core.rules import total_removed
from pipelines.io import read_split, staged_outputs, write_json, write_split
from pipelines.layout import SPLITS, Layout
from pipelines.modalities.text.plugins.common import (
    TEXT,
    clean_rules,
    no_cache_files,
)


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from pipelines.modalities.text.rules import clean_text_splits

    outputs = (layout.cleaned, layout.quarantine, layout.clean_metrics)
    with no_cache_files():
        splits = {name: read_split(layout.split(layout.ingested, name)) for name in SPLITS}
        cleaned, quarantine, report = clean_text_splits(splits, clean_rules(cfg), cfg.data.num_proc)
        removed = total_removed(report)
        metrics = {
            "rows_in": {name: s["rows_in"] for name, s in report.items()},
            "rows_out": {name: s["rows_out"] for name, s in report.items()},
            "quarantined": sum(removed.values()),
            "removed_by_rule": removed,
            "masked": total_removed(report, "masked"),
            "normalized": sum(s["normalized"] for s in report.values()),
            "splits": report,
        }
        with staged_outputs(layout.staging, *outputs) as (folder, quarantine_file, metrics_file):
            folder.mkdir()
            for name, ds in cleaned.items():
                write_split(layout.split(folder, name), ds)
            write_json(folder / "features.json", {"features": [TEXT], "modality": "text"})
            quarantine.to_parquet(str(quarantine_file))
            write_json(metrics_file, metrics)
    return metrics
