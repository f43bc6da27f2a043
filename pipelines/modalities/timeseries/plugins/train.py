"""train for series: the train split's per-channel statistics (they travel in the
checkpoint and the export), windows of data.timeseries.window from every series, then the
series model (InceptionTime-like CNN, MoE or dense) through the shared Lightning fit."""

from __future__ import annotations

from typing import Any

from pipelines.config import PipelineConfig, to_container
from pipelines.layout import Layout
from pipelines.modalities.timeseries.plugins.common import class_names, split_windows


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from pipelines.core.train_stage import train_and_publish
    from pipelines.datamodule import TabularDataModule
    from pipelines.io import read_split
    from pipelines.lightning_module import multiclass_probabilities
    from pipelines.modalities.timeseries.lightning import SeriesClassifier
    from pipelines.modalities.timeseries.series import channel_statistics, normalise, series_values
    from pipelines.multiclass import balanced_class_weights, multiclass_metrics
    from pipelines.strategy import check_hardware

    check_hardware(cfg)
    settings, classes = cfg.data.timeseries, class_names(layout)
    # train split only, every sample of every series: val/test statistics would leak
    mean, std = channel_statistics(series_values(read_split(layout.augmented_train)))
    raw_train, y_train = split_windows(layout.augmented_train, cfg, classes)
    raw_val, y_val = split_windows(layout.split(layout.cleaned, "val"), cfg, classes)
    x_train, x_val = normalise(raw_train, mean, std), normalise(raw_val, mean, std)
    dm = TabularDataModule(
        (x_train, y_train),
        (x_val, y_val),
        ["windows"],
        cfg.train.batch_size,
        cfg.train.eval_batch_size,
        num_workers=cfg.train.num_workers,
        seed=cfg.seed,
    )
    auto = cfg.train.pos_weight == "auto"
    weights = balanced_class_weights(y_train, len(classes)) if auto else None

    def build() -> SeriesClassifier:
        return SeriesClassifier(
            class_names=classes,
            channels=list(settings.channels),
            window=settings.window.length,
            sampling_rate_hz=settings.sampling_rate_hz,
            mean=mean,
            std=std,
            model=to_container(cfg.model),
            train=to_container(cfg.train),
            class_weights=weights,
        )

    def validate(module: SeriesClassifier) -> dict[str, float]:
        scores = multiclass_metrics(y_val, multiclass_probabilities(module, x_val), classes)
        return {"accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]}

    facts = {
        "windows": {"train": len(x_train), "val": len(x_val)},
        "channel_mean": mean,
        "channel_std": std,
    }
    return train_and_publish(cfg, layout, dm, validate, build, facts, {"modality": "timeseries"})
