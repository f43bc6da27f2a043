"""evaluate for images: accuracy, macro-F1, per-class precision and recall and a confusion
matrix per variant; the defect view (recall of the defect classes, precision at
evaluate.defect_recall); texture features (pooled HOG, grey and edge quantiles) with logistic
regression and with boosted trees, trained on the same train split; a grid of misclassified
test images; latency at evaluate.latency_batch_sizes, every variant timed round-robin on the
same preprocessed images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipelines.config import PipelineConfig
from pipelines.io import staged_outputs, write_json
from pipelines.layout import Layout
from pipelines.modalities.image.plugins.common import (
    ONNX_VARIANTS,
    class_names,
    image_size,
    split_arrays,
    variant_file,
)

MISCLASSIFIED_SHOWN = 32


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from pipelines.evaluation import interleaved_latency
    from pipelines.modalities.image.baseline import (
        class_probabilities,
        fit_baselines,
        texture_features,
    )
    from pipelines.modalities.image.lightning import image_probabilities, load_image_checkpoint
    from pipelines.modalities.image.preprocess import normalise
    from pipelines.models.moe import count_parameters
    from pipelines.multiclass import (
        comparison_png,
        confusion_png,
        micro_curves,
        multiclass_metrics,
        write_curve_csv,
    )

    # PyTorch on as many threads as the ONNX Runtime sessions: the latency columns compare
    # runtimes, not thread counts
    torch.set_num_threads(cfg.evaluate.threads)
    module = load_image_checkpoint(layout.checkpoint)
    classes = class_names(layout)
    size = image_size(cfg)
    raw_test, y_test = split_arrays(layout.split(layout.cleaned, "test"), size, classes)
    x_test = normalise(raw_test, list(module.hparams.mean), list(module.hparams.std))
    raw_train, y_train = split_arrays(layout.augmented_train, size, classes)
    baselines = fit_baselines(texture_features(raw_train), y_train, cfg.seed)
    del raw_train
    features_test = texture_features(raw_test)

    available = [v for v in ONNX_VARIANTS if variant_file(layout.onnx_dir, v).is_file()]
    sessions = {
        f"onnx_{v}": _onnx_scorer(variant_file(layout.onnx_dir, v), cfg.evaluate.threads)
        for v in available
    }
    probabilities = {"pytorch_fp32": image_probabilities(module, x_test)}
    probabilities.update({name: score(x_test) for name, score in sessions.items()})
    for name, baseline in baselines.items():
        probabilities[name] = class_probabilities(baseline, features_test, len(classes))
    reference = "onnx_fp32" if "onnx_fp32" in probabilities else "pytorch_fp32"
    good = cfg.data.image.good_class
    report: dict[str, Any] = {
        "modality": "image",
        "test_rows": len(y_test),
        "classes": classes,
        "good_class": good,
        "reference": reference,
        "variants": {},
    }
    for name, p in probabilities.items():
        report["variants"][name] = {
            **multiclass_metrics(y_test, p, classes),
            **defect_view(y_test, p, classes, good, cfg.evaluate.defect_recall),
        }
    fp32_f1 = report["variants"][reference]["macro_f1"]
    for name, m in report["variants"].items():
        m["macro_f1_retained_vs_fp32"] = m["macro_f1"] / fp32_f1 if fp32_f1 else None
        if name.startswith("onnx_"):
            m["size_bytes"] = (
                variant_file(layout.onnx_dir, name.removeprefix("onnx_")).stat().st_size
            )
    report["variants"]["pytorch_fp32"]["parameters"] = count_parameters(module.model)

    # latency: every variant on the same test images, round-robin; the networks receive the
    # preprocessed images and the baselines their texture features, each timed without its
    # preprocessing (decoding is paid either way; featurising is timed alone, as
    # texture_features_only)
    rows = np.arange(len(x_test))
    predictors = {name: (lambda b, s=score: s(x_test[b])) for name, score in sessions.items()}
    predictors["pytorch_fp32"] = lambda b: image_probabilities(module, x_test[b])
    for name, baseline in baselines.items():
        predictors[name] = lambda b, m=baseline: m.predict_proba(features_test[b])
    predictors["texture_features_only"] = lambda b: texture_features(raw_test[b])
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
        for made in (folder, roc_dir, pr_dir, latency_dir):
            made.mkdir()
        for name, m in report["variants"].items():
            confusion_png(m, folder / f"confusion_{name}.png", name)
            roc, pr = micro_curves(y_test, probabilities[name], len(classes))
            write_curve_csv(roc_dir / f"{name}.csv", roc)
            write_curve_csv(pr_dir / f"{name}.csv", pr)
        shown = misclassified_png(
            raw_test, y_test, probabilities[reference], classes, folder / "misclassified.png"
        )
        report["misclassified_shown"] = shown
        write_json(folder / "evaluate.json", report)
        write_json(metrics_file, report)
        write_json(headline_file, headline(report))
        write_json(
            latency_dir / "latency.json", {"variants": latency, "threads": cfg.evaluate.threads}
        )
        comparison_png(report, latency, folder / "comparison.png")
    return report


def defect_view(
    y: np.ndarray, p: np.ndarray, classes: list[str], good: str | None, target_recall: float
) -> dict[str, Any]:
    """A missed defect costs most: the share of defective images (any class but `good`) the
    variant calls defective, the recall of each defect class, and the precision of the defect
    score 1 - p(good) at the highest threshold that still finds target_recall of the
    defects. Empty when no good class is declared or the test split lacks one side."""
    from sklearn.metrics import precision_recall_curve

    if good is None or good not in classes:
        return {}
    g = classes.index(good)
    defective = y != g
    if defective.all() or not defective.any():
        return {}
    predicted_defective = p.argmax(axis=1) != g
    precision, recall, thresholds = precision_recall_curve(defective, 1.0 - p[:, g])
    # recall falls as the threshold rises: the last point still reaching the target
    reaching = np.flatnonzero(recall[:-1] >= target_recall)
    at = reaching[-1] if len(reaching) else 0
    return {
        "defect_recall": float(predicted_defective[defective].mean()),
        "defect_precision": float(defective[predicted_defective].mean())
        if predicted_defective.any()
        else 0.0,
        "defect_class_recall": {
            name: float((p.argmax(axis=1)[y == i] == i).mean())
            for i, name in enumerate(classes)
            if i != g and (y == i).any()
        },
        "precision_at_defect_recall": {
            "recall_target": target_recall,
            "recall": float(recall[at]),
            "precision": float(precision[at]),
            "threshold": float(thresholds[at]),
        },
    }


def headline(report: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, m in report["variants"].items():
        row = {
            "accuracy": round(m["accuracy"], 6),
            "macro_f1": round(m["macro_f1"], 6),
            "macro_f1_kept": round(m["macro_f1_retained_vs_fp32"] or 0.0, 6),
        }
        if "defect_recall" in m:
            row["defect_recall"] = round(m["defect_recall"], 6)
            row["precision_at_defect_recall"] = round(
                m["precision_at_defect_recall"]["precision"], 6
            )
        if "size_bytes" in m:
            row["kib"] = round(m["size_bytes"] / 1024, 1)
        out[name] = row
    return {"test": out}


def _onnx_scorer(path: Path, threads: int):
    from pipelines.models.image import IMAGES, PROBABILITIES
    from pipelines.runtime import session

    sess = session(path, threads)

    def score(images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        out = [
            sess.run([PROBABILITIES], {IMAGES: images[start : start + batch_size]})[0]
            for start in range(0, len(images), batch_size)
        ]
        return np.concatenate(out)

    return score


def misclassified_png(
    images: np.ndarray, y: np.ndarray, p: np.ndarray, classes: list[str], path: Path
) -> int:
    """Up to MISCLASSIFIED_SHOWN misclassified test images, the most confident mistakes
    first, each titled true -> predicted (probability). Returns how many are shown."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    predicted = p.argmax(axis=1)
    wrong = np.flatnonzero(predicted != y)
    wrong = wrong[np.argsort(-p[wrong, predicted[wrong]], kind="stable")][:MISCLASSIFIED_SHOWN]
    columns = 8
    rows = max(1, -(-len(wrong) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.6, rows * 1.8), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), wrong, strict=False):
        ax.imshow(images[i].transpose(1, 2, 0))
        ax.set_title(
            f"{classes[y[i]]} -> {classes[predicted[i]]}\n{p[i, predicted[i]]:.2f}", fontsize=7
        )
    if not len(wrong):
        axes[0, 0].set_title("no misclassified test image", fontsize=9)
    fig.suptitle("misclassified test images (true -> predicted, probability)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return len(wrong)
