"""augment: class-imbalance resampling (imbalanced-learn) of the train split only."""

from __future__ import annotations

from typing import Any

from pipelines.augment import resample
from pipelines.config import PipelineConfig
from pipelines.data.schema import LABEL
from pipelines.io import read_json, read_parquet, staged_outputs, write_json, write_parquet
from pipelines.layout import Layout
from stages._cli import main


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    features = read_json(layout.features_file)["features"]
    train = read_parquet(layout.split(layout.cleaned, "train"))
    resampled = resample(train, features, cfg.data.augment, cfg.seed)
    metrics = {
        "method": cfg.data.augment.method,
        "rows_before": len(train),
        "rows_after": len(resampled),
        "positive_fraction_before": float(train[LABEL].mean()),
        "positive_fraction_after": float(resampled[LABEL].mean()),
    }
    with staged_outputs(layout.staging, layout.augmented_train, layout.augment_metrics) as (out, m):
        write_parquet(out, resampled)
        write_json(m, metrics)
    return metrics


if __name__ == "__main__":
    main("augment", run)
