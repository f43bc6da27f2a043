"""What a time-series run's config must satisfy, checked when the config loads."""

from __future__ import annotations

from pipelines.config import PipelineConfig
from pipelines.errors import PipelineError
from pipelines.models import families


def check(cfg: PipelineConfig, source: str) -> None:
    model = cfg.model
    if not families.accepts("timeseries", model):
        raise PipelineError(
            f"{source}: config key 'model.name' = {model.name!r} with data.modality = "
            f"timeseries: expected one of {', '.join(families.names_for('timeseries'))} (the "
            "series classifiers)"
        )
