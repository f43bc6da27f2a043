"""The tabular clean stage: declarative rules; removed rows go to quarantine with the rule that
removed them.
The splits stay memory-mapped `datasets` throughout (see
pipelines/modalities/tabular/cleaning.py)."""

from __future__ import annotations

from functools import partial
from typing import Any

from pipelines.config import PipelineConfig
from pipelines.data.schema_inference import stage_schema
from pipelines.io import read_split, scratch_dir, staged_outputs, write_json
from pipelines.layout import SPLITS, Layout
from pipelines.modalities.tabular.cleaning import clean_splits, write_quarantine


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    # each split is opened when its turn comes, and dropped after, so at most one split's
    # pages are mapped at a time
    splits = {name: partial(read_split, layout.split(layout.ingested, name)) for name in SPLITS}
    rows_in = {name: len(open_split()) for name, open_split in splits.items()}
    outputs = (layout.cleaned, layout.quarantine, layout.clean_metrics)
    with (
        scratch_dir(layout.staging) as work,
        staged_outputs(layout.staging, *outputs) as (folder, quarantine, metrics_file),
    ):
        folder.mkdir()
        result = clean_splits(
            splits,
            stage_schema(cfg, layout),
            cfg.data.clean,
            cfg.seed,
            work,
            partial(layout.split, folder),
            cfg.data.num_proc,
        )
        metrics = {
            "rows_in": rows_in,
            "rows_out": result.rows_out,
            "quarantined": result.quarantined,
            "removed_by_rule": result.counts,
            "imputed_values": result.imputed,
            "n_features": len(result.features),
        }
        write_json(folder / "features.json", {"features": result.features})
        write_quarantine(quarantine, result.removed, splits)
        write_json(metrics_file, metrics)
    return metrics
