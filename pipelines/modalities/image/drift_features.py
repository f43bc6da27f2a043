"""What the model server's image drift gauges measure of each image: one definition for the
export's reference (the raw train split, pipelines.modalities.image.plugins.export) and for the
server's window (pipelines.serve.inputs.image), so both sides bin the same quantity.

- `brightness`: the mean of the model's input pixels on the [0, 1] scale (after the card's
  mode and size rules, before mean/std normalisation): exposure and lighting shifts.
- `width`, `height`: the file's own size in pixels, before the size rule: a new camera or
  crop reaches the model resized, so only the file shows it.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

FEATURES = ["brightness", "width", "height"]


def image_drift_rows(
    sizes: list[tuple[int, int]], inputs: np.ndarray, preprocessing: dict[str, Any]
) -> np.ndarray:
    """[n, 3] float64 for n images: their (width, height) as files and the model's (n, 3, H,
    W) input made from them by the card's `preprocessing` (load_image_inputs)."""
    mean = np.asarray(preprocessing["mean"], dtype=np.float64).reshape(1, 3, 1, 1)
    std = np.asarray(preprocessing["std"], dtype=np.float64).reshape(1, 3, 1, 1)
    brightness = (inputs.astype(np.float64) * std + mean).mean(axis=(1, 2, 3))
    rows = np.zeros((len(inputs), len(FEATURES)), dtype=np.float64)
    rows[:, 0] = brightness
    rows[:, 1:] = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)
    return rows


def image_reference_rows(
    files: Iterable[bytes], preprocessing: dict[str, Any], limit: int
) -> np.ndarray:
    """FEATURES of up to `limit` image files (encoded bytes, as a user sends them), evenly
    spread over `files`; a file that does not decode is left out, as the server refuses it."""
    from pipelines.modalities.image.export_folder import load_image_inputs

    files = list(files)
    picked = np.unique(np.linspace(0, len(files) - 1, min(limit, len(files))).astype(int))
    sizes, inputs = [], []
    for index in picked.tolist() if len(files) else []:
        data = files[index]
        try:
            with Image.open(io.BytesIO(data)) as image:
                size = (image.width, image.height)
            inputs.append(load_image_inputs([io.BytesIO(data)], preprocessing))
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            continue
        sizes.append(size)
    if not inputs:
        return np.zeros((0, len(FEATURES)), dtype=np.float64)
    return image_drift_rows(sizes, np.concatenate(inputs), preprocessing)
