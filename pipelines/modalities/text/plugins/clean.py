"""clean for text: the declarative rules of data.text.clean; every removed row goes to
quarantine with its rule, per-rule counts to metrics."""

from __future__ import annotations

from functools import partial
from typing import Any

from pipelines.config import PipelineConfig
from pipelines.core.clean_stage import clean_and_publish
from pipelines.core.rules import split_totals
from pipelines.layout import Layout
from pipelines.modalities.text.plugins.common import TEXT, clean_rules


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from pipelines.modalities.text.rules import clean_text_splits

    clean = partial(clean_text_splits, cfg=clean_rules(cfg), num_proc=cfg.data.num_proc)
    features = {"features": [TEXT], "modality": "text"}
    return clean_and_publish(layout, clean, _figures, features)


def _figures(report: dict[str, Any]) -> dict[str, Any]:
    """PII masked per kind and texts the normalize rule changed, all splits together."""
    return {
        "masked": split_totals(report, "masked"),
        "normalized": sum(s["normalized"] for s in report.values()),
    }
