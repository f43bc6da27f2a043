"""train for images: the train split's channel statistics (they travel in the checkpoint, as
the text tokenizer does), then the image model (CNN or patch Transformer, MoE or dense)
through the shared Lightning fit with the on-the-fly half of data.image.augment."""

from __future__ import annotations

from typing import Any

from pipelines.config import PipelineConfig, to_container
from pipelines.layout import Layout
from pipelines.modalities.image.plugins.common import class_names, image_size, split_arrays


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from pipelines.core.train_stage import train_and_publish
    from pipelines.lightning_module import multiclass_probabilities
    from pipelines.modalities.image.lightning import ImageClassifier, image_datamodule
    from pipelines.modalities.image.preprocess import channel_statistics, normalise
    from pipelines.multiclass import balanced_class_weights, multiclass_metrics
    from pipelines.strategy import check_hardware

    check_hardware(cfg)
    classes, size = class_names(layout), image_size(cfg)
    raw_train, y_train = split_arrays(layout.augmented_train, size, classes)
    raw_val, y_val = split_arrays(layout.split(layout.cleaned, "val"), size, classes)
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
    # train.pos_weight = auto: each class weighs the same in the loss in total
    auto = cfg.train.pos_weight == "auto"
    weights = balanced_class_weights(y_train, len(classes)) if auto else None
    policy = cfg.data.image.augment

    def build() -> ImageClassifier:
        return ImageClassifier(
            class_names=classes,
            image_size=size,
            mean=mean,
            std=std,
            model=to_container(cfg.model),
            train=to_container(cfg.train),
            class_weights=weights,
            augment=to_container(policy) if policy.enabled else None,
        )

    def validate(module: ImageClassifier) -> dict[str, float]:
        scores = multiclass_metrics(y_val, multiclass_probabilities(module, x_val), classes)
        return {"accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]}

    facts = {"image_size": size, "channel_mean": mean, "channel_std": std}
    extra = {"modality": "image"}
    return train_and_publish(cfg, layout, dm, validate, build, facts, extra)
