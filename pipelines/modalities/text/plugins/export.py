"""export for text: the chosen ONNX variant with tokenizer.json, labels.json and the model
card, enough to score raw text from that folder alone (README: the scoring snippet)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipelines.config import PipelineConfig, to_container
from pipelines.errors import PipelineError
from pipelines.io import read_json, read_split, staged_outputs, write_json
from pipelines.layout import Layout
from pipelines.modalities.text.plugins.common import (
    ONNX_VARIANTS,
    TEXT,
    variant_file,
)

# test texts scored from the finished folder and compared with the trained model
PARITY_TEXTS = 64


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from pipelines.modalities.text.export_folder import score_texts, write_text_export
    from pipelines.modalities.text.lightning import load_text_checkpoint, text_probabilities
    from pipelines.modalities.text.tokenizer import encode

    module, tokenizer = load_text_checkpoint(layout.checkpoint)
    classes = list(module.hparams.class_names)
    evaluation = read_json(layout.evaluate_metrics)
    variant, reason = select_text_variant(cfg, evaluation, layout)
    metrics = evaluation["variants"][f"onnx_{variant}"]
    card = {
        "name": f"{cfg.data.name}-{cfg.model.name}",
        "task": "text classification",
        "variant": variant,
        "selection": {"rule": cfg.export.select.rule, "reason": reason},
        "test_metrics": {
            "rows": evaluation["test_rows"],
            "accuracy": metrics["accuracy"],
            "macro_f1": metrics["macro_f1"],
            "macro_f1_retained_vs_fp32": metrics["macro_f1_retained_vs_fp32"],
            "tfidf_baseline_macro_f1": evaluation["variants"]["tfidf_logistic_regression"][
                "macro_f1"
            ],
        },
        "config": {
            **{k: to_container(getattr(cfg, k)) for k in ("data", "model", "train", "quantize")},
            "seed": cfg.seed,
        },
    }
    model_file = variant_file(layout.onnx_dir, variant)
    tokenizer_file = layout.onnx_dir / "tokenizer.json"
    card["sha256"] = {"model.onnx": _sha256(model_file), "tokenizer.json": _sha256(tokenizer_file)}
    with staged_outputs(layout.staging, layout.export_dir) as (folder,):
        write_text_export(folder, model_file, tokenizer_file, classes, card)
        # the folder alone (its tokenizer, label order and graph, as the README's snippet uses
        # them) must give the trained model's probabilities on real test texts
        test = read_split(layout.split(layout.cleaned, "test"))
        sample = [t or "" for t in test[TEXT][:PARITY_TEXTS]]
        scored = score_texts(folder, sample)
        from_folder = np.array([[s["probabilities"][c] for c in classes] for s in scored])
        ids, _ = encode(tokenizer, sample)
        expected = text_probabilities(module, ids)
        diff = float(np.abs(from_folder - expected).max())
        atol = cfg.export.parity_atol if variant == "fp32" else cfg.export.quantized_atol
        if diff > atol:
            raise PipelineError(
                f"{folder}: scoring {len(sample)} test texts from the export folder ({variant}) "
                f"differs from the trained model by {diff:.2e}; expected at most {atol} "
                f"(config key 'export.{'parity_atol' if variant == 'fp32' else 'quantized_atol'}')"
            )
        card_file = folder / "model_card.json"
        write_json(card_file, {**read_json(card_file), "folder_vs_pytorch_max_abs_diff": diff})
    summary = {
        "variant": variant,
        "reason": reason,
        "folder_vs_pytorch_max_abs_diff": diff,
        "files": sorted(p.name for p in layout.export_dir.iterdir()),
    }
    print(f"export: {variant} ({reason}) -> {layout.export_dir}")
    return summary


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def select_text_variant(
    cfg: PipelineConfig, evaluation: dict[str, Any], layout: Layout
) -> tuple[str, str]:
    """export.select for text (pipelines.selection.select_multiclass_variant)."""
    from pipelines.selection import select_multiclass_variant

    available = [v for v in ONNX_VARIANTS if variant_file(layout.onnx_dir, v).is_file()]
    latency_file = layout.latency_report / "latency.json"
    return select_multiclass_variant(cfg, evaluation, available, latency_file, "text")
