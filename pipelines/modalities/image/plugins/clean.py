"""clean for images: the declarative rules of data.image.clean (unreadable, mode, size,
exposure, blur, exact and perceptual duplicates and leaks); every removed image goes to
quarantine with its rule and split, per-rule counts to metrics."""

from __future__ import annotations

from typing import Any

from pipelines.config import PipelineConfig
from pipelines.core.rules import total_removed
from pipelines.io import no_cache_files, read_split, staged_outputs, write_json, write_split
from pipelines.layout import SPLITS, Layout
from pipelines.modalities.image.plugins.common import IMAGE, clean_rules


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from pipelines.modalities.image.rules import clean_image_splits

    outputs = (layout.cleaned, layout.quarantine, layout.clean_metrics)
    with no_cache_files():
        splits = {name: read_split(layout.split(layout.ingested, name)) for name in SPLITS}
        rules = clean_rules(cfg)
        cleaned, quarantine, report = clean_image_splits(splits, rules, cfg.data.num_proc)
        removed = total_removed(report)
        metrics = {
            "rows_in": {name: s["rows_in"] for name, s in report.items()},
            "rows_out": {name: s["rows_out"] for name, s in report.items()},
            "quarantined": sum(removed.values()),
            "removed_by_rule": removed,
            "converted": sum(s["converted"] for s in report.values()),
            "resized": sum(s["resized"] for s in report.values()),
            "size": [rules.size.height, rules.size.width],
            "splits": report,
        }
        with staged_outputs(layout.staging, *outputs) as (folder, quarantine_file, metrics_file):
            folder.mkdir()
            for name, ds in cleaned.items():
                write_split(layout.split(folder, name), ds)
            write_json(folder / "features.json", {"features": [IMAGE], "modality": "image"})
            quarantine.to_parquet(str(quarantine_file))
            write_json(metrics_file, metrics)
    return metrics
