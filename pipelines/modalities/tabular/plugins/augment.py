"""The tabular augment stage: class-imbalance resampling (imbalanced-learn) of the train split
only."""

from __future__ import annotations

from typing import Any

from pipelines.config import PipelineConfig
from pipelines.data.schema import LABEL
from pipelines.io import read_json, read_split, staged_outputs, write_frame, write_json
from pipelines.layout import Layout
from pipelines.modalities.tabular.augment import resample


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    features = read_json(layout.features_file)["features"]
    # imbalanced-learn's samplers work on in-memory arrays: the train split is loaded
    train = read_split(layout.split(layout.cleaned, "train")).to_pandas()
    resampled = resample(train, features, cfg.data.augment, cfg.seed)
    metrics = {
        "method": cfg.data.augment.method,
        "rows_before": len(train),
        "rows_after": len(resampled),
        "positive_fraction_before": float(train[LABEL].mean()),
        "positive_fraction_after": float(resampled[LABEL].mean()),
    }
    with staged_outputs(layout.staging, layout.augmented_train, layout.augment_metrics) as (out, m):
        write_frame(out, resampled)
        write_json(m, metrics)
    return metrics

