"""export for text: the chosen ONNX variant with tokenizer.json, labels.json and the model
card, enough to score raw text from that folder alone (README: the scoring snippet);
pipelines.core.export_folder does the selecting, the card and the writing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipelines.config import PipelineConfig
from pipelines.io import read_split
from pipelines.layout import Layout
from pipelines.modalities.text.plugins.common import LABEL, TEXT

# test texts scored from the finished folder and compared with the trained model
PARITY_TEXTS = 64
TOKENIZER = "tokenizer.json"


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from pipelines.core.export_folder import (
        FolderExport,
        example_rows,
        export_multiclass,
        require_parity,
    )
    from pipelines.drift_reference import write_profile
    from pipelines.lightning_module import multiclass_probabilities
    from pipelines.modalities.text.drift_features import FEATURES, text_drift_rows
    from pipelines.modalities.text.export_folder import (
        score_texts,
        write_text_examples,
        write_text_export,
    )
    from pipelines.modalities.text.lightning import load_text_checkpoint
    from pipelines.modalities.text.tokenizer import encode

    module, tokenizer = load_text_checkpoint(layout.checkpoint)
    classes = list(module.hparams.class_names)
    tokenizer_file = layout.onnx_dir / TOKENIZER

    def check(folder: Path, variant: str, model_file: Path) -> dict[str, float]:
        # the folder alone (its tokenizer, label order and graph, as the README's snippet uses
        # them) must give the trained model's probabilities on real test texts
        test = read_split(layout.split(layout.cleaned, "test"))
        sample = [t or "" for t in test[TEXT][:PARITY_TEXTS]]
        scored = score_texts(folder, sample)
        from_folder = np.array([[s["probabilities"][c] for c in classes] for s in scored])
        ids, _ = encode(tokenizer, sample)
        expected = multiclass_probabilities(module, ids)
        bound = "parity_atol" if variant == "fp32" else "quantized_atol"
        rows, atol = f"{len(sample)} test texts", getattr(cfg.export, bound)
        diff = require_parity(
            folder,
            variant,
            from_folder,
            expected,
            rows,
            "the trained model",
            f"export.{bound}",
            atol,
        )
        return {"folder_vs_pytorch_max_abs_diff": diff}

    def write(folder: Path, model_file: Path, card: dict[str, Any]) -> None:
        write_text_export(folder, model_file, tokenizer_file, classes, card)
        test = read_split(layout.split(layout.cleaned, "test"))
        rows = example_rows(test[LABEL][:])
        picked = test.select(rows)
        write_text_examples(folder, picked[TEXT][:], [str(v) for v in picked[LABEL][:]])
        # the server's drift gauges compare traffic with the raw train texts (what clients
        # send: before clean's normalisation, masking and de-duplication)
        raw = [t or "" for t in read_split(layout.split(layout.ingested, "train"))[TEXT][:]]
        rows = text_drift_rows(raw, tokenizer.encode_batch(raw))
        write_profile(folder, rows, FEATURES, f"{layout.ingested.name}/train")

    spec = FolderExport("text", _card_metrics, write, check, {TOKENIZER: tokenizer_file})
    return export_multiclass(cfg, layout, spec)


def _card_metrics(evaluation: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        "accuracy": metrics["accuracy"],
        "macro_f1": metrics["macro_f1"],
        "macro_f1_retained_vs_fp32": metrics["macro_f1_retained_vs_fp32"],
        "tfidf_baseline_macro_f1": evaluation["variants"]["tfidf_logistic_regression"]["macro_f1"],
    }
