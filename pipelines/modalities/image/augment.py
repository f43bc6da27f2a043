"""Image augmentation as a declared policy (`data.image.augment`), in two parts.

- Offline top-up (`augment_train`, the augment stage): every class short of its declared share
  of the largest class gets new images, each an augmented copy of one of its own train
  images (flips, rotation, random resized crop, colour jitter), written as PNG bytes. Each
  generated image draws from its own generator seeded by (seed, source row, copy), so the
  augmented split is byte-identical whatever `num_proc` the map runs with.
- On-the-fly (`BatchAugment`, inside the LightningModule's training_step): the same
  geometric and colour operations plus random erasing on every training batch, then CutMix
  or MixUp with soft targets. It runs on the batch's own device, so on a GPU the
  augmentation costs no host work, and it draws from torch's global generator, which
  pipelines.training.ResumePoint seeds per batch: a resumed run sees the same batches.

The flips, rotation, crop, jitter and erasing are kornia's (differentiable, batched, on any
device, pure Python over torch: it cannot pull another torch build, which torchvision's
wheel for this torch would, being a CUDA build). CutMix and MixUp are written here: kornia's
MixUp draws lambda uniformly from a range rather than from Beta(alpha, alpha) as the MixUp
paper does, and both of its mixers return labels as (label, label, lambda) triples rather
than the soft targets the loss takes.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pipelines.core.augment import (
    PlannedCopy,
    append_generated,
    class_targets,
    mark_originals,
    top_up_plan,
)
from pipelines.errors import PipelineError
from pipelines.modalities.image import COLUMNS
from pipelines.modalities.image.config import AUGMENT_KEY, ImageAugmentConfig

__all__ = ["ImageAugmentConfig", "AUGMENT_KEY"]


def _fail(key: str, value: object, expected: str) -> None:
    raise PipelineError(f"{key} = {value!r}: expected {expected}")


# --------------------------------------------------------------------------- shared operations


def geometric_operations(cfg: ImageAugmentConfig, size: tuple[int, int]) -> list[nn.Module]:
    """Flips, rotation and random resized crop to `size` (height, width), those switched on.
    Pixel values only move, so they apply to normalised images as they are (rotation and
    crop fill with 0: black in [0, 1], the mean colour once normalised)."""
    import kornia.augmentation as K

    ops: list[nn.Module] = []
    if cfg.horizontal_flip > 0:
        ops.append(K.RandomHorizontalFlip(p=cfg.horizontal_flip))
    if cfg.vertical_flip > 0:
        ops.append(K.RandomVerticalFlip(p=cfg.vertical_flip))
    if cfg.rotation_degrees > 0:
        ops.append(K.RandomRotation(degrees=cfg.rotation_degrees, p=1.0))
    if cfg.crop_scale[0] < 1:
        ops.append(K.RandomResizedCrop(size=size, scale=tuple(cfg.crop_scale), p=1.0))
    return ops


def colour_operations(cfg: ImageAugmentConfig) -> list[nn.Module]:
    """Colour jitter, if switched on: it reads pixel values, so it runs on images in [0, 1]."""
    import kornia.augmentation as K

    if max(cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue) == 0:
        return []
    jitter = K.ColorJitter(
        brightness=cfg.brightness,
        contrast=cfg.contrast,
        saturation=cfg.saturation,
        hue=cfg.hue,
        p=1.0,
    )
    return [jitter]


def image_operations(cfg: ImageAugmentConfig, size: tuple[int, int]) -> nn.Module:
    """The label-preserving operations both parts share, on images in [0, 1]: geometric,
    then colour. Operations switched off are left out, so the empty policy is the identity."""
    return nn.Sequential(*geometric_operations(cfg, size), *colour_operations(cfg))


# ---------------------------------------------------------------------------- offline top-up


def image_class_targets(labels: list[str], cfg: ImageAugmentConfig) -> dict[str, int]:
    """Images each class should have after the top-up: its share (class_min_share, else
    min_class_share) of the largest class's count, rounded up; a class_min_share naming no
    class of the split fails naming the key."""
    unknown = sorted(set(cfg.class_min_share) - {str(label) for label in labels})
    if unknown:
        known = sorted({str(label) for label in labels})
        _fail(f"{AUGMENT_KEY}.class_min_share", unknown, f"classes among {', '.join(known)}")
    return class_targets(labels, cfg.min_class_share, cfg.class_min_share)


def image_seed(seed: int, source_row: int, copy: int) -> int:
    """The torch seed of one generated image: a function of what it is, not of when or in
    which process it is made."""
    return int(np.random.SeedSequence([seed, source_row, copy]).generate_state(1)[0])


def augment_image(
    image: Any, operations: nn.Module, seed: int, background: tuple[int, ...] = (255, 255, 255)
) -> bytes:
    """One augmented copy of a PIL image, as PNG bytes in the source's mode (grey stays grey,
    anything else becomes RGB, transparency composited onto `background`)."""
    from PIL import Image

    from pipelines.modalities.image.transparency import on_background

    mode = "L" if image.mode == "L" else "RGB"
    pixels = np.asarray(on_background(image, background), dtype=np.float32) / 255.0
    batch = torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        out = operations(batch).clamp(0, 1)
    array = (out[0].permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array, "RGB").convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


def augment_train(
    train: Any,
    cfg: ImageAugmentConfig,
    seed: int,
    num_proc: int | None = None,
    background: tuple[int, ...] = (255, 255, 255),
) -> tuple[Any, dict[str, Any]]:
    """The train split (a datasets.Dataset with ingest's Image column and str label) with
    generated images appended (columns AUGMENTED and SOURCE_ID say which and from where), and
    a report: rows added per class, rows before and after, and each class's target.
    `background`: data.image.clean.background, for images that still carry transparency."""
    image_column, label_column = COLUMNS
    rows = len(train)
    original = mark_originals(train, label_column)
    report: dict[str, Any] = {"added": {}, "rows_before": rows, "rows_after": rows, "targets": {}}
    if not cfg.enabled:
        return original, report
    # `[:]`: datasets 5 returns a lazy column that reads row by row when iterated
    labels = [str(label) for label in train[label_column][:]]
    targets = image_class_targets(labels, cfg)
    report["targets"] = targets
    plan = top_up_plan(labels, targets, seed)
    if not plan:
        return original, report
    operations: dict[tuple[int, int], nn.Module] = {}  # by image size

    def make_image(image: Any, copy: PlannedCopy) -> dict[str, Any]:
        size = (image.height, image.width)
        if size not in operations:
            operations[size] = image_operations(cfg, size)
        seeded = image_seed(seed, copy.source, copy.copy)
        png = augment_image(image, operations[size], seeded, background)
        return {"bytes": png, "path": None}

    combined, added = append_generated(
        original, plan, make_image, image_column, label_column, batch_size=64, num_proc=num_proc
    )
    report.update(added=dict(sorted(added.items())), rows_after=len(combined))
    return combined, report


# ------------------------------------------------------------------------- on-the-fly batches


class BatchAugment(nn.Module):
    """Training-batch augmentation for normalised images (batch, 3, H, W): the shared
    geometric operations, colour jitter (in [0, 1], so it means what it says), random erasing
    to the mean colour (0 after normalisation), then CutMix or MixUp. Returns the images and soft
    targets (batch, num_classes) summing to 1 per row.

    No parameters and no persistent buffers: adding it to a LightningModule leaves the
    checkpoint's state_dict as it was."""

    def __init__(
        self,
        cfg: ImageAugmentConfig,
        num_classes: int,
        mean: list[float],
        std: list[float],
        size: tuple[int, int],
    ) -> None:
        super().__init__()
        import kornia.augmentation as K

        self.cfg, self.num_classes = cfg, num_classes
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        on = cfg.enabled
        self.geometric = nn.Sequential(*(geometric_operations(cfg, size) if on else []))
        self.colour = nn.Sequential(*(colour_operations(cfg) if on else []))
        self.erasing = (
            K.RandomErasing(p=cfg.erasing_probability, value=0.0)
            if cfg.enabled and cfg.erasing_probability > 0
            else None
        )
        # kornia keeps some settings in buffers (RandomRotation's degrees): they follow the
        # module to the batch's device, but are policy, not weights, and stay out of the
        # checkpoint, which must load whatever policy (or none) the loader uses
        for module in self.modules():
            module._non_persistent_buffers_set.update(module._buffers)

    def forward(self, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        targets = F.one_hot(labels.long(), self.num_classes).to(images.dtype)
        if len(self.geometric):
            images = self.geometric(images)
        if len(self.colour):
            mean, std = self.mean.to(images.dtype), self.std.to(images.dtype)
            pixels = self.colour((images * std + mean).clamp(0, 1))
            images = (pixels - mean) / std
        if self.erasing is not None:
            images = self.erasing(images)
        if not self.cfg.mixes or len(images) < 2:
            return images, targets
        draw = float(torch.rand(()))
        if draw < self.cfg.cutmix_probability:
            return cutmix(images, targets, self.cfg.cutmix_alpha)
        if draw < self.cfg.cutmix_probability + self.cfg.mixup_probability:
            return mixup(images, targets, self.cfg.mixup_alpha)
        return images, targets


def _beta(alpha: float) -> float:
    return float(torch.distributions.Beta(alpha, alpha).sample())


def mixup(images: Tensor, targets: Tensor, alpha: float) -> tuple[Tensor, Tensor]:
    """MixUp (Zhang et al. 2018): each image blended with another of the batch, lambda from
    Beta(alpha, alpha), targets blended alike."""
    lam = _beta(alpha)
    other = torch.randperm(len(images), device=images.device)
    return (
        lam * images + (1 - lam) * images[other],
        lam * targets + (1 - lam) * targets[other],
    )


def cutmix(images: Tensor, targets: Tensor, alpha: float) -> tuple[Tensor, Tensor]:
    """CutMix (Yun et al. 2019): a box of another image of the batch pasted in, the targets
    mixed by the box's exact share of the image (after clipping it to the border)."""
    lam = _beta(alpha)
    other = torch.randperm(len(images), device=images.device)
    height, width = images.shape[-2:]
    cut = math.sqrt(1 - lam)
    box_h, box_w = int(height * cut), int(width * cut)
    cy, cx = int(torch.randint(height, ())), int(torch.randint(width, ()))
    top, bottom = max(cy - box_h // 2, 0), min(cy + box_h // 2, height)
    left, right = max(cx - box_w // 2, 0), min(cx + box_w // 2, width)
    mixed = images.clone()
    mixed[..., top:bottom, left:right] = images[other][..., top:bottom, left:right]
    kept = 1 - (bottom - top) * (right - left) / (height * width)
    return mixed, kept * targets + (1 - kept) * targets[other]
