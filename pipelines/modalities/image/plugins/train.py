"""train for images: the train split's channel statistics (they travel in the checkpoint, as
the text tokenizer does), then the image model (CNN or patch Transformer, MoE or dense)
through the shared Lightning fit with the on-the-fly half of data.image.augment."""

from __future__ import annotations

from functools import partial
from typing import Any

from pipelines.config import PipelineConfig
from pipelines.layout import Layout
from pipelines.modalities.image.plugins.common import (
    class_names,
    image_background,
    image_size,
    split_arrays,
)


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from pipelines.core.train_stage import (
        multiclass_class_weights,
        multiclass_validation,
        train_and_publish,
    )
    from pipelines.modalities.image.lightning import image_classifier, image_datamodule
    from pipelines.modalities.image.preprocess import channel_statistics, normalise
    from pipelines.strategy import check_hardware

    check_hardware(cfg)
    classes, size = class_names(layout), image_size(cfg)
    raw_train, y_train = split_arrays(layout.augmented_train, size, classes, image_background(cfg))
    raw_val, y_val = split_arrays(
        layout.split(layout.cleaned, "val"), size, classes, image_background(cfg)
    )
    # train split only: val/test statistics would leak into the model's input
    mean, std = channel_statistics(raw_train)
    x_train, x_val = normalise(raw_train, mean, std), normalise(raw_val, mean, std)
    del raw_train, raw_val
    dm = image_datamodule(
        (x_train, y_train),
        (x_val, y_val),
        cfg.train.batch_size,
        cfg.train.eval_batch_size,
        seed=cfg.seed,
        num_workers=cfg.train.num_workers,
    )
    weights = multiclass_class_weights(cfg, y_train, len(classes))
    policy = cfg.data.image.augment
    build = partial(image_classifier, cfg, classes, size, (mean, std), weights, policy)
    facts = {"image_size": size, "channel_mean": mean, "channel_std": std}
    extra = {"modality": "image"}
    validate = multiclass_validation(x_val, y_val, classes)
    return train_and_publish(cfg, layout, dm, validate, build, facts, extra)
