"""clean: declarative rules; removed rows go to quarantine with the rule that removed them."""

from __future__ import annotations

from typing import Any

from pipelines.cleaning import clean_splits, encode_features
from pipelines.config import PipelineConfig
from pipelines.io import read_parquet, staged_outputs, write_json, write_parquet
from pipelines.layout import SPLITS, Layout
from stages._cli import main


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    schema = cfg.data.schema
    splits = {name: read_parquet(layout.split(layout.ingested, name)) for name in SPLITS}
    result = clean_splits(splits, schema, cfg.data.clean, cfg.seed)
    encoded, features = encode_features(result.splits, schema)
    metrics = {
        "rows_in": {name: len(part) for name, part in splits.items()},
        "rows_out": {name: len(part) for name, part in encoded.items()},
        "quarantined": len(result.quarantine),
        "removed_by_rule": result.counts,
        "imputed_values": result.imputed,
        "n_features": len(features),
    }
    outputs = (layout.cleaned, layout.quarantine, layout.clean_metrics)
    with staged_outputs(layout.staging, *outputs) as (folder, quarantine, metrics_file):
        folder.mkdir()
        for name, part in encoded.items():
            write_parquet(layout.split(folder, name), part)
        write_json(folder / "features.json", {"features": features})
        write_parquet(quarantine, result.quarantine)
        write_json(metrics_file, metrics)
    return metrics


if __name__ == "__main__":
    main("clean", run)
