"""augment for text: top-ups of the rare intents in the train split by EDA and, when declared,
back-translation (data.text.augment)."""

from __future__ import annotations

from typing import Any

from pipelines.config import PipelineConfig
from pipelines.io import read_split, staged_outputs, write_json, write_split
from pipelines.layout import Layout
from pipelines.modalities.text.plugins.common import (
    no_cache_files,
)


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from pipelines.modalities.text.augment import augment_train

    settings = cfg.data.text.augment
    with no_cache_files():
        train = read_split(layout.split(layout.cleaned, "train"))
        combined, report = augment_train(train, settings, cfg.seed, num_proc=cfg.data.num_proc)
        back_translation = settings.enabled and settings.back_translation.enabled
        metrics = {
            "method": ("eda+back_translation" if back_translation else "eda")
            if settings.enabled
            else "none",
            "rows_before": report["rows_before"],
            "rows_after": report["rows_after"],
            "added_by_class": report["added"],
            "added_by_method": report["added_by"],
            # asked for and impossible here fails in augment_train; this says it was not asked
            "back_translation": "run" if back_translation else "not run",
        }
        outputs = (layout.augmented_train, layout.augment_metrics)
        with staged_outputs(layout.staging, *outputs) as (out, metrics_file):
            write_split(out, combined)
            write_json(metrics_file, metrics)
    return metrics
