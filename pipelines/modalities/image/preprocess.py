"""Images to the model's input: decoded to uint8 (n, 3, H, W) at one size, and normalised with
per-channel mean and std computed on the train split only (the statistics are an artifact,
like a tokenizer: saved beside the model and shipped with the export, so serving normalises
exactly as training did)."""

from __future__ import annotations

from typing import Any

import numpy as np


def decode_images(
    dataset: Any,
    size: int,
    column: str = "image",
    background: tuple[int, ...] = (255, 255, 255),
) -> np.ndarray:
    """Every image of a datasets.Dataset column as uint8 (n, 3, size, size): RGB (grey is
    replicated, transparency composited onto `background`, data.image.clean.background),
    resized with bilinear filtering where it is not already size x size."""
    from PIL import Image

    from pipelines.modalities.image.transparency import on_background

    out = np.empty((len(dataset), 3, size, size), dtype=np.uint8)
    for i, image in enumerate(dataset[column]):
        rgb = on_background(image, background)
        if rgb.size != (size, size):
            rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
        out[i] = np.asarray(rgb).transpose(2, 0, 1)
    return out


def channel_statistics(images: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 (n, 3, H, W) images, on the [0, 1] scale; float64
    sums, so a large split does not lose precision."""
    scaled = images.astype(np.float64) / 255.0
    mean = scaled.mean(axis=(0, 2, 3))
    std = scaled.std(axis=(0, 2, 3))
    return [float(v) for v in mean], [float(max(v, 1e-6)) for v in std]


def normalise(images: np.ndarray, mean: list[float], std: list[float]) -> np.ndarray:
    """uint8 (n, 3, H, W) -> float32 (x / 255 - mean) / std, the model's input."""
    m = np.asarray(mean, dtype=np.float32).reshape(1, -1, 1, 1)
    s = np.asarray(std, dtype=np.float32).reshape(1, -1, 1, 1)
    return ((images.astype(np.float32) / 255.0 - m) / s).astype(np.float32)
