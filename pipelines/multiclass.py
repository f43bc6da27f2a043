"""Metrics of a multi-class model (text intents, image defect classes) from its class
probabilities: accuracy, macro-F1, per-class precision and recall, the confusion matrix, and
a confusion-matrix PNG. torchmetrics computes them, as it does the binary metrics
(pipelines/evaluation.py), so training-time and evaluate-time figures agree by construction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_confusion_matrix,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
)

from pipelines.errors import PipelineError


def multiclass_metrics(
    y_true: np.ndarray, probabilities: np.ndarray, class_names: list[str]
) -> dict[str, Any]:
    """`y_true`: class indices (n,); `probabilities`: (n, len(class_names)).

    Accuracy is micro (the share of rows right); macro-F1 averages the classes alike, so a
    rare intent counts as much as a common one. A class absent from `y_true` and never
    predicted gets precision and recall 0 from torchmetrics, which would pull the macro
    average down for a class that cannot be judged; such classes are listed under
    `absent_classes` and left out of the macro average."""
    n_classes = len(class_names)
    if probabilities.ndim != 2 or probabilities.shape != (len(y_true), n_classes):
        raise PipelineError(
            f"multiclass metrics: probabilities of shape {probabilities.shape}; expected "
            f"({len(y_true)}, {n_classes}), one column per class of {class_names}"
        )
    preds = torch.from_numpy(np.asarray(probabilities, dtype=np.float32))
    target = torch.from_numpy(np.asarray(y_true, dtype=np.int64))
    per_class = {"num_classes": n_classes, "average": "none"}
    precision = multiclass_precision(preds, target, **per_class)
    recall = multiclass_recall(preds, target, **per_class)
    f1 = multiclass_f1_score(preds, target, **per_class)
    confusion = multiclass_confusion_matrix(preds, target, num_classes=n_classes)
    present = (confusion.sum(dim=1) + confusion.sum(dim=0)) > 0
    return {
        "accuracy": float(
            multiclass_accuracy(preds, target, num_classes=n_classes, average="micro")
        ),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(confusion[i].sum()),
            }
            for i, name in enumerate(class_names)
        },
        "absent_classes": [name for i, name in enumerate(class_names) if not present[i]],
        "confusion_matrix": confusion.tolist(),
        "class_names": list(class_names),
    }


def confusion_png(metrics: dict[str, Any], path: Path, title: str) -> None:
    """Row-normalised confusion matrix (each true class sums to 1, so a rare class is as
    readable as a common one), with the counts written in each cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.array(metrics["confusion_matrix"], dtype=float)
    names = metrics["class_names"]
    shares = counts / np.clip(counts.sum(axis=1, keepdims=True), 1, None)
    size = 1.0 + 0.6 * len(names)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (row, col), count in np.ndenumerate(counts):
        colour = "white" if shares[row, col] > 0.5 else "black"
        ax.text(col, row, f"{int(count)}", ha="center", va="center", color=colour, fontsize=8)
    ax.set_title(f"{title}: accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}")
    fig.colorbar(image, ax=ax, label="share of the true class")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def micro_curves(y: np.ndarray, p: np.ndarray, n_classes: int) -> tuple[list, list]:
    """Micro-averaged one-vs-rest ROC and PR (every (row, class) pair a binary decision), so
    DVC's ROC/PR plots compare text variants as they compare tabular ones."""
    from pipelines.evaluation import curves

    onehot = np.eye(n_classes, dtype=np.int64)[y]
    return curves(onehot.ravel(), p.ravel())


def write_curve_csv(path: Path, rows: list[dict]) -> None:
    import csv

    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def comparison_png(report: dict[str, Any], latency: dict[str, Any], path: Path) -> None:
    """Macro-F1 per variant beside its latency at the largest batch: the trade-off at a
    glance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["variants"])
    f1 = [report["variants"][n]["macro_f1"] for n in names]
    sizes = sorted(int(k.removeprefix("batch")) for k in latency[names[0]] if k.startswith("batch"))
    largest = f"batch{sizes[-1]}"
    ms = [latency[n][largest]["p50_ms"] for n in names]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    left.barh(names, f1, color="tab:blue")
    left.set_xlabel("test macro-F1")
    left.set_xlim(0, 1)
    right.barh(names, ms, color="tab:orange")
    right.set_xlabel(f"p50 latency at batch {sizes[-1]} (ms)")
    right.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def balanced_class_weights(y: np.ndarray, n_classes: int) -> list[float]:
    """n / (k * count) per class, scikit-learn's "balanced" rule, so a rare class weighs as
    much in the loss as a common one. By hand because a class absent from train gets weight 0
    here, where sklearn's compute_class_weight refuses it."""
    counts = np.bincount(y, minlength=n_classes).astype(float)
    weights = np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0)
    return [float(w) for w in weights]
