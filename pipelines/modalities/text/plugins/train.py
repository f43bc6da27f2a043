"""train for text: a byte-level BPE tokenizer trained on the train split, then the text
Transformer (MoE or dense) through the shared Lightning fit; the tokenizer travels inside the
checkpoint."""

from __future__ import annotations

from functools import partial
from typing import Any

from pipelines.config import PipelineConfig
from pipelines.io import read_split
from pipelines.layout import Layout
from pipelines.modalities.text.plugins.common import (
    TEXT,
    class_names,
    encoded_split,
)


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from pipelines.core.train_stage import (
        multiclass_class_weights,
        multiclass_validation,
        train_and_publish,
    )
    from pipelines.datamodule import TabularDataModule
    from pipelines.modalities.text.lightning import intent_classifier
    from pipelines.modalities.text.tokenizer import train_tokenizer
    from pipelines.strategy import check_hardware

    check_hardware(cfg)
    classes = class_names(layout)
    train_texts = [t or "" for t in read_split(layout.augmented_train)[TEXT][:]]
    tokenizer = train_tokenizer(train_texts, cfg.data.text.tokenizer)
    ids_train, y_train, _ = encoded_split(layout.augmented_train, tokenizer, classes)
    ids_val, y_val, _ = encoded_split(layout.split(layout.cleaned, "val"), tokenizer, classes)
    dm = TabularDataModule.from_config(cfg, (ids_train, y_train), (ids_val, y_val), ["input_ids"])
    weights = multiclass_class_weights(cfg, y_train, len(classes))
    build = partial(intent_classifier, cfg, tokenizer, classes, weights)
    facts = {"vocab_size": tokenizer.get_vocab_size()}
    # the tokenizer travels inside the checkpoint: the model is meaningless without it
    extra = {"modality": "text", "tokenizer": tokenizer.to_str()}
    validate = multiclass_validation(ids_val, y_val, classes)
    return train_and_publish(cfg, layout, dm, validate, build, facts, extra)
