"""train for text: a byte-level BPE tokenizer trained on the train split, then the text
Transformer (MoE or dense) through the shared Lightning fit; the tokenizer travels inside the
checkpoint."""

from __future__ import annotations

from typing import Any

from pipelines.config import PipelineConfig, to_container
from pipelines.io import read_split
from pipelines.layout import Layout
from pipelines.modalities.text.plugins.common import (
    TEXT,
    class_names,
    encoded_split,
)


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from pipelines.core.train_stage import train_and_publish
    from pipelines.datamodule import TabularDataModule
    from pipelines.lightning_module import multiclass_probabilities
    from pipelines.modalities.text.lightning import TextIntentClassifier
    from pipelines.modalities.text.tokenizer import PAD, train_tokenizer
    from pipelines.multiclass import balanced_class_weights, multiclass_metrics
    from pipelines.strategy import check_hardware

    check_hardware(cfg)
    classes = class_names(layout)
    train_texts = [t or "" for t in read_split(layout.augmented_train)[TEXT][:]]
    tokenizer = train_tokenizer(train_texts, cfg.data.text.tokenizer)
    ids_train, y_train, _ = encoded_split(layout.augmented_train, tokenizer, classes)
    ids_val, y_val, _ = encoded_split(layout.split(layout.cleaned, "val"), tokenizer, classes)
    dm = TabularDataModule.from_config(cfg, (ids_train, y_train), (ids_val, y_val), ["input_ids"])
    # train.pos_weight = auto: each intent weighs the same in the loss in total
    auto = cfg.train.pos_weight == "auto"
    weights = balanced_class_weights(y_train, len(classes)) if auto else None

    def build() -> TextIntentClassifier:
        return TextIntentClassifier(
            vocab_size=tokenizer.get_vocab_size(),
            pad_id=tokenizer.token_to_id(PAD),
            class_names=classes,
            model=to_container(cfg.model),
            train=to_container(cfg.train),
            class_weights=weights,
        )

    def validate(module: TextIntentClassifier) -> dict[str, float]:
        scores = multiclass_metrics(y_val, multiclass_probabilities(module, ids_val), classes)
        return {"accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]}

    facts = {"vocab_size": tokenizer.get_vocab_size()}
    # the tokenizer travels inside the checkpoint: the model is meaningless without it
    extra = {"modality": "text", "tokenizer": tokenizer.to_str()}
    return train_and_publish(cfg, layout, dm, validate, build, facts, extra)
