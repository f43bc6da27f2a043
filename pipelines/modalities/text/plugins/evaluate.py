"""evaluate for text: accuracy, macro-F1, per-class precision/recall and a confusion
matrix per variant, against TF-IDF + logistic regression trained on the same train split;
latency at evaluate.latency_batch_sizes, every variant timed round-robin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipelines.config import PipelineConfig
from pipelines.io import read_split, staged_outputs, write_json
from pipelines.layout import Layout
from pipelines.modalities.text.plugins.common import (
    LABEL,
    ONNX_VARIANTS,
    TEXT,
    encoded_split,
    variant_file,
)


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from pipelines.evaluation import interleaved_latency
    from pipelines.modalities.text.baseline import class_probabilities, tfidf_logistic_regression
    from pipelines.modalities.text.lightning import load_text_checkpoint, text_probabilities
    from pipelines.models.moe import count_parameters
    from pipelines.multiclass import (
        comparison_png,
        confusion_png,
        micro_curves,
        multiclass_metrics,
        write_curve_csv,
    )

    # PyTorch on as many threads as the ONNX Runtime sessions, so the latency columns compare
    # the runtimes, not the thread counts
    torch.set_num_threads(cfg.evaluate.threads)
    module, tokenizer = load_text_checkpoint(layout.checkpoint)
    classes, pad_id = list(module.hparams.class_names), int(module.hparams.pad_id)
    ids_test, y_test, texts_test = encoded_split(
        layout.split(layout.cleaned, "test"), tokenizer, classes
    )
    train = read_split(layout.augmented_train)
    index = {name: i for i, name in enumerate(classes)}
    baseline = tfidf_logistic_regression(
        [t or "" for t in train[TEXT][:]],
        np.array([index[v] for v in train[LABEL][:]]),
        cfg.seed,
    )
    available = [v for v in ONNX_VARIANTS if variant_file(layout.onnx_dir, v).is_file()]
    sessions = {
        f"onnx_{v}": _onnx_scorer(variant_file(layout.onnx_dir, v), pad_id, cfg) for v in available
    }
    probabilities = {"pytorch_fp32": text_probabilities(module, ids_test)}
    probabilities.update({name: score(ids_test) for name, score in sessions.items()})
    probabilities["tfidf_logistic_regression"] = class_probabilities(
        baseline, texts_test, len(classes)
    )
    reference = "onnx_fp32" if "onnx_fp32" in probabilities else "pytorch_fp32"
    report: dict[str, Any] = {
        "modality": "text",
        "test_rows": len(y_test),
        "classes": classes,
        "reference": reference,
        "variants": {},
    }
    for name, p in probabilities.items():
        m = multiclass_metrics(y_test, p, classes)
        report["variants"][name] = {**m}
    fp32_f1 = report["variants"][reference]["macro_f1"]
    for name, m in report["variants"].items():
        m["macro_f1_retained_vs_fp32"] = m["macro_f1"] / fp32_f1 if fp32_f1 else None
        if name.startswith("onnx_"):
            m["size_bytes"] = (
                variant_file(layout.onnx_dir, name.removeprefix("onnx_")).stat().st_size
            )
    report["variants"]["pytorch_fp32"]["parameters"] = count_parameters(module.model)

    # latency: every variant on the same test rows, round-robin; each predictor receives row
    # numbers and looks up its own input (token ids, or raw text for TF-IDF, whose vectorizer
    # is its tokenizer), so the ONNX timings exclude tokenising; tokenising is timed alone
    rows = np.arange(len(ids_test))

    def ids_of(batch: np.ndarray) -> np.ndarray:
        return ids_test[batch]

    predictors = {name: (lambda b, s=score: s(ids_of(b))) for name, score in sessions.items()}
    predictors["pytorch_fp32"] = lambda b: text_probabilities(module, ids_of(b))
    predictors["tfidf_logistic_regression"] = lambda b: baseline.predict_proba(
        [texts_test[i] for i in b]
    )
    predictors["tokenize_only"] = lambda b: tokenizer.encode_batch([texts_test[i] for i in b])
    latency = interleaved_latency(
        predictors, rows, cfg.evaluate.latency_batch_sizes, cfg.evaluate.latency_repeats
    )
    outputs = (
        layout.evaluate_report,
        layout.evaluate_metrics,
        layout.headline_metrics,
        layout.roc_curves,
        layout.pr_curves,
        layout.latency_report,
    )
    with staged_outputs(layout.staging, *outputs) as (
        folder,
        metrics_file,
        headline_file,
        roc_dir,
        pr_dir,
        latency_dir,
    ):
        folder.mkdir()
        roc_dir.mkdir()
        pr_dir.mkdir()
        latency_dir.mkdir()
        for name, m in report["variants"].items():
            confusion_png(m, folder / f"confusion_{name}.png", name)
            roc, pr = micro_curves(y_test, probabilities[name], len(classes))
            write_curve_csv(roc_dir / f"{name}.csv", roc)
            write_curve_csv(pr_dir / f"{name}.csv", pr)
        write_json(folder / "evaluate.json", report)
        write_json(metrics_file, report)
        write_json(headline_file, headline(report))
        write_json(
            latency_dir / "latency.json", {"variants": latency, "threads": cfg.evaluate.threads}
        )
        comparison_png(report, latency, folder / "comparison.png")
    return report


def headline(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "test": {
            name: {
                "accuracy": round(m["accuracy"], 6),
                "macro_f1": round(m["macro_f1"], 6),
                "macro_f1_kept": round(m["macro_f1_retained_vs_fp32"] or 0.0, 6),
                **({"kib": round(m["size_bytes"] / 1024, 1)} if "size_bytes" in m else {}),
            }
            for name, m in report["variants"].items()
        }
    }


def _onnx_scorer(path: Path, pad_id: int, cfg: PipelineConfig):
    from pipelines.modalities.text.onnx_variants import trimmed
    from pipelines.models.text import ATTENTION_MASK, INPUT_IDS, PROBABILITIES
    from pipelines.runtime import session

    sess = session(path, cfg.evaluate.threads)

    def score(ids: np.ndarray, batch_size: int = 256) -> np.ndarray:
        out = []
        for start in range(0, len(ids), batch_size):
            batch_ids, mask = trimmed(ids[start : start + batch_size], pad_id)
            out.append(sess.run([PROBABILITIES], {INPUT_IDS: batch_ids, ATTENTION_MASK: mask})[0])
        return np.concatenate(out)

    return score
