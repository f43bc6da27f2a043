"""What a table run's config must satisfy, checked when the config loads."""

from __future__ import annotations

from pipelines.config import PipelineConfig
from pipelines.errors import PipelineError
from pipelines.models import families


def check(cfg: PipelineConfig, source: str) -> None:
    # the table models, or a user's own class over a row's features; a sequence model reads
    # each entity's history of rows
    if not families.accepts("tabular", cfg.model):
        raise PipelineError(
            f"{source}: config key 'model.name' = {cfg.model.name!r} with data.modality = "
            f"{cfg.data.modality}: expected one of {', '.join(families.names_for('tabular'))} "
            "(the table "
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
