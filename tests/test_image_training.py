"""Image training end to end on small data: ~600 synthetic 32x32 images of three easy classes
(horizontal stripes, vertical stripes, a bright disc, each over noise in a random tint), the
MoE CNN fitted through the shared fit (the one the tabular and text models use) with the
on-the-fly augmentation on, validation accuracy and macro-F1 logged each epoch, the best
epoch kept, and the classes learned well above chance."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest

from pipelines.lightning_module import multiclass_probabilities
from pipelines.modalities.image.augment import ImageAugmentConfig
from pipelines.modalities.image.lightning import ImageClassifier, image_classifier, image_datamodule
from pipelines.modalities.image.preprocess import channel_statistics, normalise
from pipelines.multiclass import multiclass_metrics
from pipelines.training import fit_classifier
from tests.modality_runs import multiclass_fit_config

SIZE, NAMES = 32, ["disc", "horizontal", "vertical"]


def synthetic_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (n, 3, SIZE, SIZE) and labels: each class a shape a small CNN tells apart at a
    glance, over noise, tinted and placed at random so no single pixel gives it away."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    images = np.empty((n, 3, SIZE, SIZE), dtype=np.uint8)
    for i, label in enumerate(y):
        period, phase = rng.integers(4, 9), rng.integers(0, 8)
        if label == 0:
            cy, cx, r = rng.integers(8, 24, size=2).tolist() + [rng.integers(5, 9)]
            shape = ((rows - cy) ** 2 + (cols - cx) ** 2 < r * r).astype(float)
        elif label == 1:
            shape = (((rows + phase) // (period // 2)) % 2).astype(float)
        else:
            shape = (((cols + phase) // (period // 2)) % 2).astype(float)
        tint = rng.uniform(0.4, 1.0, size=3)[:, None, None]
        pixels = 0.15 + 0.6 * shape[None] * tint + rng.normal(0, 0.08, size=(3, SIZE, SIZE))
        images[i] = (np.clip(pixels, 0, 1) * 255).astype(np.uint8)
    return images, y


def test_the_moe_cnn_learns_the_classes_through_the_shared_fit(tmp_path: Path) -> None:
    raw, y = synthetic_images(600, seed=7)
    mean, std = channel_statistics(raw[:480])  # train split only
    x = normalise(raw, mean, std)
    cfg = multiclass_fit_config(
        tmp_path,
        "+experiment=visual_inspection",
        name="image_cnn_moe",
        hidden_dim=32,
        ffn_dim=32,
        num_blocks=1,
        dropout=0.0,
    )
    dm = image_datamodule((x[:480], y[:480]), (x[480:], y[480:]), 32, 256, seed=cfg.seed)
    # flips and mild jitter keep every class what it is; MixUp exercises the soft targets
    policy = ImageAugmentConfig(rotation_degrees=0.0, crop_scale=[0.9, 1.0], mixup_probability=0.3)

    build = partial(image_classifier, cfg, NAMES, SIZE, (mean, std), None, policy)
    result = fit_classifier(cfg, dm, tmp_path / "work", build_module=build)

    assert isinstance(result.module, ImageClassifier) and result.epochs_run == 4
    assert result.module.model_cfg.is_moe
    assert [row["epoch"] for row in result.history] == [0, 1, 2, 3]
    assert all("val_macro_f1" in row and "val_accuracy" in row for row in result.history)
    scores = multiclass_metrics(y[480:], multiclass_probabilities(result.module, x[480:]), NAMES)
    # 60 steps from scratch: three easy shapes are learned far above chance (1/3)
    assert scores["accuracy"] > 0.85
    # the weights kept are the best epoch's: their figures are the logged ones
    best = max(result.history, key=lambda row: row["val_macro_f1"])
    assert result.best_score == pytest.approx(best["val_macro_f1"])
    assert scores["accuracy"] == pytest.approx(best["val_accuracy"], abs=1e-6)
