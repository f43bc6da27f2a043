"""augment for series: the train split topped up per class with transformed copies of each
short class's own series (data.timeseries.augment: jitter, scaling, magnitude and time
warping, window slicing, same-class mixing)."""

from __future__ import annotations

from typing import Any

from pipelines.config import PipelineConfig
from pipelines.io import no_cache_files, read_split, staged_outputs, write_json, write_split
from pipelines.layout import Layout


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from pipelines.modalities.timeseries.augment import augment_train

    settings = cfg.data.timeseries
    with no_cache_files():
        train = read_split(layout.split(layout.cleaned, "train"))
        combined, report = augment_train(train, settings.augment, cfg.seed)
        metrics = {"method": "policy" if settings.augment.enabled else "none", **report}
        with staged_outputs(layout.staging, layout.augmented_train, layout.augment_metrics) as (
            out,
            metrics_file,
        ):
            write_split(out, combined)
            write_json(metrics_file, metrics)
    return metrics
