"""What a table run's config must satisfy, checked when the config loads."""

from __future__ import annotations

from pipelines.config import PipelineConfig
from pipelines.errors import PipelineError

# the tabular models; a sequence model reads each entity's history of rows
TABULAR_MODELS = (
    "moe_mlp",
    "dense_mlp",
    "moe_transformer",
    "dense_transformer",
    "bilstm_attention",
)


def check(cfg: PipelineConfig, source: str) -> None:
    if cfg.model.name not in TABULAR_MODELS:
        raise PipelineError(
            f"{source}: config key 'model.name' = {cfg.model.name!r} with data.modality = "
            f"{cfg.data.modality}: expected one of {', '.join(TABULAR_MODELS)} (the table "
            "models; an image or text model needs its modality, e.g. +experiment=visual_inspection)"
        )
    if cfg.model.is_sequence and not (cfg.data.schema.sequence_key and cfg.data.schema.time_column):
        raise PipelineError(
            f"{source}: config key 'data.schema.sequence_key' = {cfg.data.schema.sequence_key!r}, "
            f"'data.schema.time_column' = {cfg.data.schema.time_column!r}: model "
            f"{cfg.model.name!r} reads each entity's history, so both must name columns"
        )
    gates = cfg.data.profile.gates
    if gates.min_positive_fraction > gates.max_positive_fraction:
        raise PipelineError(
            f"{source}: config keys 'data.profile.gates.min_positive_fraction' = "
            f"{gates.min_positive_fraction} > 'data.profile.gates.max_positive_fraction' = "
            f"{gates.max_positive_fraction}; expected min <= max"
        )
    for column, rule in cfg.data.clean.ranges.items():
        if rule.min is not None and rule.max is not None and rule.min > rule.max:
            raise PipelineError(
                f"{source}: config key 'data.clean.ranges.{column}': min = {rule.min} > "
                f"max = {rule.max}; expected min <= max"
            )
