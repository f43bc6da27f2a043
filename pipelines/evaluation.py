"""Task metrics (torchmetrics), latency percentiles, throughput and size for each variant."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torchmetrics.functional.classification import (
    binary_auroc,
    binary_average_precision,
    binary_f1_score,
    binary_precision,
    binary_precision_recall_curve,
    binary_recall,
    binary_roc,
    binary_specificity,
)

Predict = Callable[[np.ndarray], np.ndarray]


def ranking_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Threshold-free metrics (what training selects on)."""
    probs, target = torch.from_numpy(p.astype(np.float32)), torch.from_numpy(y.astype(np.int64))
    return {
        "auroc": float(binary_auroc(probs, target)),
        "auprc": float(binary_average_precision(probs, target)),
    }


def classification_metrics(
    y: np.ndarray, p: np.ndarray, target_fpr: float, threshold: float
) -> dict[str, float]:
    """Ranking metrics, and the decision metrics at `threshold` (chosen on validation)."""
    probs, target = torch.from_numpy(p.astype(np.float32)), torch.from_numpy(y.astype(np.int64))
    fpr, tpr, _ = binary_roc(probs, target)
    within = fpr <= target_fpr
    # a score >= threshold is positive, as on the curves the threshold was chosen from
    # (torchmetrics' own `threshold=` argument compares with >)
    decisions = torch.from_numpy((p >= threshold).astype(np.int64))
    return {
        **ranking_metrics(y, p),
        "threshold": float(threshold),
        "f1": float(binary_f1_score(decisions, target)),
        "precision": float(binary_precision(decisions, target)),
        "recall": float(binary_recall(decisions, target)),
        "fpr": 1.0 - float(binary_specificity(decisions, target)),
        f"recall_at_{target_fpr:g}_fpr": float(tpr[within].max()) if within.any() else 0.0,
    }


def curves(y: np.ndarray, p: np.ndarray, points: int = 200) -> tuple[list[dict], list[dict]]:
    """ROC and PR curves, thinned to at most `points` rows for DVC plots."""
    probs, target = torch.from_numpy(p.astype(np.float32)), torch.from_numpy(y.astype(np.int64))
    fpr, tpr, _ = binary_roc(probs, target)
    precision, recall, _ = binary_precision_recall_curve(probs, target)
    roc = [{"fpr": float(a), "tpr": float(b)} for a, b in _thin(fpr, tpr, points)]
    pr = [{"recall": float(a), "precision": float(b)} for a, b in _thin(recall, precision, points)]
    return roc, pr


def _thin(a: torch.Tensor, b: torch.Tensor, points: int):
    index = np.unique(np.linspace(0, len(a) - 1, min(points, len(a))).astype(int))
    return zip(a[index].tolist(), b[index].tolist(), strict=True)


def predict_all(predict: Predict, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    return np.concatenate([predict(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


def latency(
    predict: Predict, x: np.ndarray, batch_sizes: list[int], repeats: int
) -> dict[str, Any]:
    """Per-call latency percentiles (ms) per batch size, and rows/s at the largest batch."""
    report: dict[str, Any] = {}
    for size in batch_sizes:
        batch = np.ascontiguousarray(x[np.arange(size) % len(x)])
        for _ in range(3):
            predict(batch)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            predict(batch)
            times.append((time.perf_counter() - start) * 1000)
        p50, p95, p99 = np.percentile(times, [50, 95, 99])
        report[f"batch{size}"] = {"p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99)}
    largest = max(batch_sizes)
    report["throughput_rows_per_s"] = largest / (report[f"batch{largest}"]["p50_ms"] / 1000)
    return report


def interleaved_latency(
    predictors: dict[str, Predict], x: np.ndarray, batch_sizes: list[int], repeats: int
) -> dict[str, dict[str, Any]]:
    """`latency` for several variants at once, timed round-robin (one call of each in turn,
    `repeats` rounds per batch size): a burst of machine noise then slows every variant alike
    instead of whichever was being timed, so the ratios between them hold on a busy machine."""
    times: dict[str, dict[int, list[float]]] = {name: {} for name in predictors}
    for size in batch_sizes:
        batch = np.ascontiguousarray(x[np.arange(size) % len(x)])
        for _ in range(3):
            for predict in predictors.values():
                predict(batch)
        for name in predictors:
            times[name][size] = []
        for _ in range(repeats):
            for name, predict in predictors.items():
                start = time.perf_counter()
                predict(batch)
                times[name][size].append((time.perf_counter() - start) * 1000)
    largest = max(batch_sizes)
    report: dict[str, dict[str, Any]] = {}
    for name, by_size in times.items():
        report[name] = {}
        for size, values in by_size.items():
            p50, p95, p99 = np.percentile(values, [50, 95, 99])
            report[name][f"batch{size}"] = {
                "p50_ms": float(p50),
                "p95_ms": float(p95),
                "p99_ms": float(p99),
            }
        report[name]["throughput_rows_per_s"] = largest / (
            report[name][f"batch{largest}"]["p50_ms"] / 1000
        )
    return report
