"""evaluate for text: accuracy, macro-F1, per-class precision/recall and a confusion
matrix per variant, against TF-IDF + logistic regression trained on the same train split;
latency at evaluate.latency_batch_sizes, every variant timed round-robin
(pipelines.core.multiclass_evaluate)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from pipelines.config import PipelineConfig
from pipelines.io import read_split
from pipelines.layout import Layout
from pipelines.modalities.text.plugins.common import LABEL, TEXT, encoded_split


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from pipelines.core.multiclass_evaluate import Baseline, MulticlassTest, evaluate_multiclass
    from pipelines.lightning_module import multiclass_probabilities
    from pipelines.modalities.text.baseline import class_probabilities, tfidf_logistic_regression
    from pipelines.modalities.text.lightning import load_text_checkpoint
    from pipelines.modalities.text.onnx_variants import text_feed
    from pipelines.models.moe import count_parameters

    torch.set_num_threads(cfg.evaluate.threads)  # as the ONNX sessions: evaluate_multiclass
    module, tokenizer = load_text_checkpoint(layout.checkpoint)
    classes, pad_id = list(module.hparams.class_names), int(module.hparams.pad_id)
    ids_test, y_test, texts_test = encoded_split(
        layout.split(layout.cleaned, "test"), tokenizer, classes
    )
    ids_val, y_val, _ = encoded_split(layout.split(layout.cleaned, "val"), tokenizer, classes)
    train = read_split(layout.augmented_train)
    index = {name: i for i, name in enumerate(classes)}
    baseline = tfidf_logistic_regression(
        [t or "" for t in train[TEXT][:]],
        np.array([index[v] for v in train[LABEL][:]]),
        cfg.seed,
    )
    # TF-IDF times its own vectorizer on the raw texts; tokenising is timed alone
    test = MulticlassTest(
        modality="text",
        classes=classes,
        y=y_test,
        x=ids_test,
        onnx_feed=text_feed(pad_id),
        pytorch=lambda ids: multiclass_probabilities(module, ids),
        parameters=count_parameters(module.model),
        baselines={
            "tfidf_logistic_regression": Baseline(
                probabilities=class_probabilities(baseline, texts_test, len(classes)),
                predict=lambda b: baseline.predict_proba([texts_test[i] for i in b]),
            )
        },
        preprocessing=(
            "tokenize_only",
            lambda b: tokenizer.encode_batch([texts_test[i] for i in b]),
        ),
        validation=(ids_val, y_val),
    )
    return evaluate_multiclass(cfg, layout, test)
