"""The series classifier's LightningModule: class-weighted cross-entropy + DeepSpeed's
load-balancing loss, accuracy and macro-F1 on validation, all from
pipelines.lightning_module.MulticlassClassifierBase; it trains through the same fit
(pipelines.training.fit_classifier) as the other modalities. Batches are (normalised float32
windows (batch, channels, length), int64 labels), carried by the shared data module."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.lightning_module import MulticlassClassifierBase
from pipelines.models.timeseries import build_series_model


class SeriesClassifier(MulticlassClassifierBase):
    def __init__(
        self,
        class_names: list[str],
        channels: list[str],
        window: int,
        sampling_rate_hz: float,
        mean: list[float],
        std: list[float],
        model: dict[str, Any],
        train: dict[str, Any],
        class_weights: list[float] | None = None,
    ) -> None:
        """`mean`/`std`: the train split's per-channel statistics the windows were
        normalised with (export ships them, with the channels, window and rate)."""
        super().__init__()
        self.record_settings(model, train)
        self.model = build_series_model(len(class_names), len(channels), window, self.model_cfg)
        self.track_classes(len(class_names))


def load_series_checkpoint(path: Path) -> SeriesClassifier:
    """The series model (eval mode) from the train stage's checkpoint."""
    from pipelines.training import read_checkpoint

    payload = read_checkpoint(path, "timeseries")
    module = SeriesClassifier(**payload["hyper_parameters"])
    module.load_state_dict(payload["state_dict"])
    return module.eval()
