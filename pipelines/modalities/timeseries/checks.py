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
    if families.family_of(model) and families.FAMILIES[model.name].target.endswith(
        "PatchClassifier"
    ):
        length = cfg.data.timeseries.window.length
        if length % model.seq_len:
            # each channel's window is cut into seq_len patches of equal length
            raise PipelineError(
                f"{source}: config key 'model.seq_len' = {model.seq_len} with "
                f"'data.timeseries.window.length' = {length}: {model.name} expects a number of "
                "patches that divides the window length"
            )
