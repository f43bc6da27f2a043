"""What an image run's config must satisfy, checked when the config loads."""

from __future__ import annotations

import math

from pipelines.config import PipelineConfig
from pipelines.errors import PipelineError
from pipelines.models import families


def check(cfg: PipelineConfig, source: str) -> None:
    model, size = cfg.model, cfg.data.image.clean.size
    if not families.accepts("image", model):
        raise PipelineError(
            f"{source}: config key 'model.name' = {model.name!r} with data.modality = image: "
            f"expected one of {', '.join(families.names_for('image'))} (the image classifiers)"
        )
    if not size.enabled or size.height != size.width:
        # the model and its export take one square size: clean is where every image gets it
        raise PipelineError(
            f"{source}: config keys 'data.image.clean.size.enabled' = {size.enabled}, "
            f"'data.image.clean.size.height' = {size.height}, 'data.image.clean.size.width' = "
            f"{size.width}: expected the size rule on with height = width (the image models "
            "take square images)"
        )
    if model.name.startswith("image_patch"):
        grid = math.isqrt(model.seq_len)
        if grid * grid != model.seq_len or size.height % grid:
            raise PipelineError(
                f"{source}: config key 'model.seq_len' = {model.seq_len}: {model.name} expects a "
                f"square number of patches whose side divides the image side "
                f"(data.image.clean.size.height = {size.height}), e.g. 16 for a 4 x 4 grid"
            )
        if model.head_dim is None and model.hidden_dim % model.num_heads:
            raise PipelineError(
                f"{source}: config keys 'model.hidden_dim' = {model.hidden_dim}, "
                f"'model.num_heads' = {model.num_heads}: expected hidden_dim divisible by "
                "num_heads (or model.head_dim set)"
            )
