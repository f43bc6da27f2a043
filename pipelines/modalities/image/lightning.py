"""The image classifier's LightningModule: cross-entropy over the classes (with soft targets
when CutMix or MixUp mixes a batch) + DeepSpeed's load-balancing loss, accuracy and macro-F1
(torchmetrics) on validation; the optimizer, schedule and MoE logs are the shared ones
(pipelines.lightning_module.MoEClassifierBase), and it trains through the same fit
(pipelines.training.fit_classifier) as the tabular and text models.

Batches are (images float32 (batch, 3, H, W) already normalised, labels int64), so the
tabular data module and its resumable sampler carry images unchanged (`image_datamodule`).
The on-the-fly augmentation (pipelines.modalities.image.augment.BatchAugment) runs inside
training_step,
on the batch's device; validation sees the images as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from pipelines.datamodule import TabularDataModule
from pipelines.lightning_module import MulticlassClassifierBase
from pipelines.modalities.image.augment import BatchAugment, ImageAugmentConfig
from pipelines.models.image import build_image_model


class ImageClassifier(MulticlassClassifierBase):
    def __init__(
        self,
        class_names: list[str],
        image_size: int,
        mean: list[float],
        std: list[float],
        model: dict[str, Any],
        train: dict[str, Any],
        class_weights: list[float] | None = None,
        augment: dict[str, Any] | None = None,
    ) -> None:
        """`mean`/`std`: the train split's per-channel statistics the inputs were normalised
        with (the augmentation undoes them for colour jitter; export ships them). `augment`:
        an ImageAugmentConfig as a dict, None for no on-the-fly augmentation."""
        super().__init__()
        self.record_settings(model, train)
        n = len(class_names)
        self.model = build_image_model(n, image_size, self.model_cfg)
        self.batch_augment = (
            BatchAugment(ImageAugmentConfig(**augment), n, mean, std, (image_size, image_size))
            if augment is not None
            else None
        )
        self.track_classes(n)

    def _task_loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        """Class-weighted cross-entropy over soft targets (batch, classes), normalised by the
        targets' total weight: with one-hot targets it is exactly F.cross_entropy(logits, y,
        weight=w), so the training and validation losses are on one scale."""
        if targets.ndim == 1:
            targets = F.one_hot(targets.long(), logits.shape[-1]).to(logits.dtype)
        weighted = targets.to(logits.dtype)
        weight = self.class_weight(logits)
        if weight is not None:
            weighted = weighted * weight.to(logits.dtype)
        per_row = -(weighted * F.log_softmax(logits, dim=-1)).sum(dim=-1)
        return per_row.sum() / weighted.sum().clamp_min(torch.finfo(logits.dtype).tiny)

    def training_batch(self, images: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """The batch augmented on the batch's device (CutMix/MixUp give soft targets)."""
        if self.batch_augment is None:
            return images, y
        with torch.no_grad():
            return self.batch_augment(images, y)


def image_classifier(
    cfg: Any,
    class_names: list[str],
    image_size: int,
    statistics: tuple[list[float], list[float]],
    class_weights: list[float] | None,
    policy: ImageAugmentConfig | None,
) -> ImageClassifier:
    """The module for `cfg`'s model and train settings, on images normalised with the train
    split's per-channel (mean, std) `statistics`, augmented on the fly by `policy` (None or
    disabled: not at all)."""
    from pipelines.config import to_container

    mean, std = statistics
    return ImageClassifier(
        class_names=class_names,
        image_size=image_size,
        mean=mean,
        std=std,
        model=to_container(cfg.model),
        train=to_container(cfg.train),
        class_weights=class_weights,
        augment=to_container(policy) if policy is not None and policy.enabled else None,
    )


def image_datamodule(
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    batch_size: int,
    eval_batch_size: int,
    seed: int,
    num_workers: int = 0,
) -> TabularDataModule:
    """(normalised float32 images (n, 3, H, W), int64 labels) per split as Lightning loaders:
    the shared data module, whose resumable sampler and batched indexing work on arrays of
    any shape."""
    for name, (x, y) in (("train", train), ("val", val)):
        if x.ndim != 4 or x.shape[1] != 3 or x.dtype != np.float32 or len(x) != len(y):
            raise ValueError(
                f"{name}: expected float32 images (n, 3, H, W) and n labels, got "
                f"{x.dtype} {x.shape} and {len(y)} labels"
            )
    return TabularDataModule(
        (train[0], train[1].astype(np.int64)),
        (val[0], val[1].astype(np.int64)),
        ["image"],
        batch_size,
        eval_batch_size,
        num_workers=num_workers,
        seed=seed,
    )


def load_image_checkpoint(path: Path) -> ImageClassifier:
    """The image model (eval mode) from the train stage's checkpoint; its hyper-parameters
    carry the class names, the image size and the normalisation (mean, std)."""
    from pipelines.training import read_checkpoint

    payload = read_checkpoint(path, "image")
    module = ImageClassifier(**payload["hyper_parameters"])
    module.load_state_dict(payload["state_dict"])
    return module.eval()
