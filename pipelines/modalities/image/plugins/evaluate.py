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
from pipelines.layout import Layout
from pipelines.modalities.image.plugins.common import (
    class_names,
    image_background,
    image_size,
    split_arrays,
)

MISCLASSIFIED_SHOWN = 32


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from pipelines.core.multiclass_evaluate import Baseline, MulticlassTest, evaluate_multiclass
    from pipelines.lightning_module import multiclass_probabilities
    from pipelines.modalities.image.baseline import (
        class_probabilities,
        fit_baselines,
        texture_features,
    )
    from pipelines.modalities.image.lightning import load_image_checkpoint
    from pipelines.modalities.image.onnx_variants import image_feed
    from pipelines.modalities.image.preprocess import normalise
    from pipelines.models.moe import count_parameters

    torch.set_num_threads(cfg.evaluate.threads)  # as the ONNX sessions: evaluate_multiclass
    module = load_image_checkpoint(layout.checkpoint)
    classes = class_names(layout)
    size = image_size(cfg)
    raw_test, y_test = split_arrays(
        layout.split(layout.cleaned, "test"), size, classes, image_background(cfg)
    )
    x_test = normalise(raw_test, list(module.hparams.mean), list(module.hparams.std))
    raw_val, y_val = split_arrays(
        layout.split(layout.cleaned, "val"), size, classes, image_background(cfg)
    )
    x_val = normalise(raw_val, list(module.hparams.mean), list(module.hparams.std))
    del raw_val
    raw_train, y_train = split_arrays(layout.augmented_train, size, classes, image_background(cfg))
    baselines = fit_baselines(texture_features(raw_train), y_train, cfg.seed)
    del raw_train
    features_test = texture_features(raw_test)
    good = cfg.data.image.good_class

    def misclassified(folder: Path, report: dict[str, Any], p: dict[str, np.ndarray]) -> dict:
        reference = p[report["reference"]]
        path = folder / "misclassified.png"
        return {
            "misclassified_shown": misclassified_png(raw_test, y_test, reference, classes, path)
        }

    # the networks take the preprocessed images and the baselines their texture features,
    # each timed without its preprocessing (decoding is paid either way; featurising is timed
    # alone, as texture_features_only)
    test = MulticlassTest(
        modality="image",
        classes=classes,
        y=y_test,
        x=x_test,
        onnx_feed=image_feed,
        pytorch=lambda x: multiclass_probabilities(module, x),
        parameters=count_parameters(module.model),
        baselines={
            name: Baseline(
                probabilities=class_probabilities(model, features_test, len(classes)),
                predict=lambda b, m=model: m.predict_proba(features_test[b]),
            )
            for name, model in baselines.items()
        },
        preprocessing=("texture_features_only", lambda b: texture_features(raw_test[b])),
        validation=(x_val, y_val),
        variant_metrics=lambda p: defect_view(y_test, p, classes, good, cfg.evaluate.defect_recall),
        facts={"good_class": good},
        headline_columns=defect_columns,
        figures=misclassified,
    )
    return evaluate_multiclass(cfg, layout, test)


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


def defect_columns(m: dict[str, Any]) -> dict[str, Any]:
    """The defect view's headline columns, where the variant has one."""
    if "defect_recall" not in m:
        return {}
    return {
        "defect_recall": round(m["defect_recall"], 6),
        "precision_at_defect_recall": round(m["precision_at_defect_recall"]["precision"], 6),
    }


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
