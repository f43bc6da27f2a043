"""The evaluate stage for a multi-class model, whatever its modality: accuracy, macro-F1,
per-class precision/recall and a confusion matrix per variant (PyTorch, every ONNX file
quantize wrote, the modality's classical baselines), micro-averaged ROC and PR curves,
latency at evaluate.latency_batch_sizes with every variant timed round-robin, the headline
table and the comparison plot.

A modality supplies a MulticlassTest: its test split as the networks' inputs and labels,
how its PyTorch model and ONNX graphs take a batch, its fitted baselines, its preprocessing
timed alone, and any figures of its own (the image defect view, the misclassified grid).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.config import PipelineConfig
from pipelines.core.onnx_variants import Feed, available_variants, batch_scorer, variant_file
from pipelines.io import staged_outputs, write_json
from pipelines.layout import Layout

Rows = Callable[[np.ndarray], Any]  # test row numbers -> what a predictor computes for them


@dataclass(frozen=True)
class Baseline:
    """A classical model reported beside the networks; it reads its own input (raw text,
    texture or series features), not the networks', so it is not an export candidate."""

    probabilities: np.ndarray  # (test rows, classes)
    predict: Rows  # timed: test row numbers -> probabilities, from its own input


@dataclass(frozen=True)
class MulticlassTest:
    """What one modality brings to the evaluate stage."""

    modality: str
    classes: list[str]
    y: np.ndarray  # class indices of the test rows
    x: np.ndarray  # the test rows as the networks take them (token ids, normalised images)
    onnx_feed: Feed  # a batch of `x` as the ONNX graphs' feed
    pytorch: Callable[[np.ndarray], np.ndarray]  # rows of `x` -> the PyTorch probabilities
    parameters: int  # the PyTorch model's
    baselines: dict[str, Baseline]
    # the modality's own preprocessing, timed alone: (its name in latency.json, the work)
    preprocessing: tuple[str, Rows]
    # the report's keys of the modality's own, after modality, test_rows and classes
    facts: dict[str, Any] = field(default_factory=dict)
    # the validation split as the networks take it, and its labels: export.select rule `best`
    # ranks the ONNX variants by their validation macro-F1 (the test split stays unseen)
    validation: tuple[np.ndarray, np.ndarray] | None = None
    # figures of the modality's own for one variant's probabilities, merged into its metrics
    variant_metrics: Callable[[np.ndarray], dict[str, Any]] = lambda p: {}
    # the modality's own headline columns from one variant's metrics (before the file size)
    headline_columns: Callable[[dict[str, Any]], dict[str, Any]] = lambda m: {}
    # more figures into the report folder: (folder, report, probabilities) -> report additions
    figures: Callable[[Path, dict[str, Any], dict[str, np.ndarray]], dict[str, Any]] = (
        lambda folder, report, probabilities: {}
    )


def evaluate_multiclass(
    cfg: PipelineConfig, layout: Layout, test: MulticlassTest
) -> dict[str, Any]:
    """Score, time and plot every variant on the test split; write evaluate's outputs.
    The caller sets PyTorch's threads to cfg.evaluate.threads before it loads anything, as
    many as the ONNX Runtime sessions, so the latency columns compare the runtimes, not the
    thread counts."""
    from pipelines.evaluation import interleaved_latency
    from pipelines.multiclass import (
        comparison_png,
        confusion_png,
        micro_curves,
        multiclass_metrics,
        write_curve_csv,
    )

    sessions = {
        f"onnx_{v}": batch_scorer(
            variant_file(layout.onnx_dir, v), cfg.evaluate.threads, test.onnx_feed
        )
        for v in available_variants(layout.onnx_dir)
    }
    probabilities = {"pytorch_fp32": test.pytorch(test.x)}
    probabilities.update({name: score(test.x) for name, score in sessions.items()})
    probabilities.update({name: b.probabilities for name, b in test.baselines.items()})
    reference = "onnx_fp32" if "onnx_fp32" in probabilities else "pytorch_fp32"
    report: dict[str, Any] = {
        "modality": test.modality,
        "test_rows": len(test.y),
        "classes": test.classes,
        **test.facts,
        "reference": reference,
        "variants": {},
    }
    for name, p in probabilities.items():
        report["variants"][name] = {
            **multiclass_metrics(test.y, p, test.classes),
            **test.variant_metrics(p),
        }
    fp32_f1 = report["variants"][reference]["macro_f1"]
    for name, m in report["variants"].items():
        m["macro_f1_retained_vs_fp32"] = m["macro_f1"] / fp32_f1 if fp32_f1 else None
        if name.startswith("onnx_"):
            m["size_bytes"] = (
                variant_file(layout.onnx_dir, name.removeprefix("onnx_")).stat().st_size
            )
    report["variants"]["pytorch_fp32"]["parameters"] = test.parameters
    if test.validation is not None:
        x_val, y_val = test.validation
        for name, score in sessions.items():
            val = multiclass_metrics(y_val, score(x_val), test.classes)
            report["variants"][name]["val_macro_f1"] = val["macro_f1"]

    # latency: every variant on the same test rows, round-robin; each predictor receives row
    # numbers and looks up its own input (the networks' `x`, a baseline's own features or raw
    # input), so no timing includes the modality's preprocessing, which is timed alone
    rows = np.arange(len(test.x))
    predictors: dict[str, Rows] = {
        name: (lambda b, s=score: s(test.x[b])) for name, score in sessions.items()
    }
    predictors["pytorch_fp32"] = lambda b: test.pytorch(test.x[b])
    predictors.update({name: b.predict for name, b in test.baselines.items()})
    preprocessing_name, preprocess = test.preprocessing
    predictors[preprocessing_name] = preprocess
    latency = interleaved_latency(
        predictors, rows, cfg.evaluate.latency_batch_sizes, cfg.evaluate.latency_repeats
    )
    outputs = (
        layout.baselines_onnx_dir,
        layout.evaluate_report,
        layout.evaluate_metrics,
        layout.headline_metrics,
        layout.roc_curves,
        layout.pr_curves,
        layout.latency_report,
    )
    with staged_outputs(layout.staging, *outputs) as (
        baselines_folder,
        folder,
        metrics_file,
        headline_file,
        roc_dir,
        pr_dir,
        latency_dir,
    ):
        for made in (baselines_folder, folder, roc_dir, pr_dir, latency_dir):
            made.mkdir()
        write_json(
            baselines_folder / "candidates.json",
            {
                "candidates": [],
                "why": f"the {test.modality} baselines read their own input, not the "
                "networks': reported beside the variants, not export candidates",
            },
        )
        for name, m in report["variants"].items():
            confusion_png(m, folder / f"confusion_{name}.png", name)
            roc, pr = micro_curves(test.y, probabilities[name], len(test.classes))
            write_curve_csv(roc_dir / f"{name}.csv", roc)
            write_curve_csv(pr_dir / f"{name}.csv", pr)
        report.update(test.figures(folder, report, probabilities))
        write_json(folder / "evaluate.json", report)
        write_json(metrics_file, report)
        write_json(headline_file, headline(report, test.headline_columns))
        write_json(
            latency_dir / "latency.json", {"variants": latency, "threads": cfg.evaluate.threads}
        )
        comparison_png(report, latency, folder / "comparison.png")
    return report


def headline(
    report: dict[str, Any], columns: Callable[[dict[str, Any]], dict[str, Any]] = lambda m: {}
) -> dict[str, Any]:
    """metrics/headline.json: per variant the rounded figures a reader compares first, the
    modality's own `columns` among them, then the file size where there is a file."""
    out = {}
    for name, m in report["variants"].items():
        out[name] = {
            "accuracy": round(m["accuracy"], 6),
            "macro_f1": round(m["macro_f1"], 6),
            "macro_f1_kept": round(m["macro_f1_retained_vs_fp32"] or 0.0, 6),
            **columns(m),
            **({"kib": round(m["size_bytes"] / 1024, 1)} if "size_bytes" in m else {}),
        }
    return {"test": out}
