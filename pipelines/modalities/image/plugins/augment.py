"""augment for images: the train split topped up per class (data.image.augment: flips,
rotation, resized crop, colour jitter on copies of each short class's own images); the
on-the-fly part of the policy runs in train."""

from __future__ import annotations

from typing import Any

from pipelines.config import PipelineConfig
from pipelines.io import no_cache_files, read_split, staged_outputs, write_json, write_split
from pipelines.layout import Layout


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from pipelines.modalities.image.augment import augment_train

    settings = cfg.data.image.augment
    with no_cache_files():
        train = read_split(layout.split(layout.cleaned, "train"))
        background = cfg.data.image.clean.background_rgb
        combined, report = augment_train(
            train, settings, cfg.seed, num_proc=cfg.data.num_proc, background=background
        )
        metrics = {"method": "policy" if settings.enabled else "none", **report}
        outputs = (layout.augmented_train, layout.augment_metrics)
        with staged_outputs(layout.staging, *outputs) as (out, metrics_file):
            write_split(out, combined)
            write_json(metrics_file, metrics)
    return metrics
