"""What a text run's config must satisfy, checked when the config loads."""

from __future__ import annotations

from pipelines.config import PipelineConfig
from pipelines.errors import PipelineError
from pipelines.models import families


def check(cfg: PipelineConfig, source: str) -> None:
    if not families.accepts("text", cfg.model):
        raise PipelineError(
            f"{source}: config key 'model.name' = {cfg.model.name!r} with data.modality = text: "
            f"expected one of {', '.join(families.names_for('text'))} (the text encoders)"
        )
    max_length = cfg.data.text.tokenizer.max_length
    if cfg.model.seq_len != max_length:
        # the position table is model.seq_len long and must cover every token the tokenizer
        # keeps; conf/experiment/customer_service.yaml ties the two by interpolation
        raise PipelineError(
            f"{source}: config key 'model.seq_len' = {cfg.model.seq_len}: expected "
            f"data.text.tokenizer.max_length = {max_length} for a text model"
        )
    if not cfg.data.schema.text:
        raise PipelineError(
            f"{source}: config key 'data.schema.text' is not set: expected the name of the "
            "column holding the text"
        )
