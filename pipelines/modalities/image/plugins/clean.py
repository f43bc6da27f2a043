"""clean for images: the declarative rules of data.image.clean (unreadable, mode, size,
exposure, blur, exact and perceptual duplicates and leaks); every removed image goes to
quarantine with its rule and split, per-rule counts to metrics."""

from __future__ import annotations

from functools import partial
from typing import Any

from pipelines.config import PipelineConfig
from pipelines.core.clean_stage import clean_and_publish
from pipelines.layout import Layout
from pipelines.modalities.image.plugins.common import IMAGE, clean_rules


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from pipelines.modalities.image.rules import clean_image_splits

    rules = clean_rules(cfg)
    clean = partial(clean_image_splits, cfg=rules, num_proc=cfg.data.num_proc)

    def figures(report: dict[str, Any]) -> dict[str, Any]:
        """Images converted and resized, all splits together, and the size they now have."""
        return {
            "converted": sum(s["converted"] for s in report.values()),
            "resized": sum(s["resized"] for s in report.values()),
            "size": [rules.size.height, rules.size.width],
        }

    return clean_and_publish(layout, clean, figures, {"features": [IMAGE], "modality": "image"})
