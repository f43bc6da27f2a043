"""What the image plug-ins of several stages share: the canonical columns, the rules as
configured, the label map, a split file as the model's input, the ONNX files' names."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from pipelines.config import PipelineConfig
from pipelines.errors import PipelineError
from pipelines.io import read_json, read_split
from pipelines.layout import Layout
from pipelines.modalities.image import COLUMNS
from pipelines.modalities.image.config import ImageCleanConfig

IMAGE, LABEL = COLUMNS


def clean_rules(cfg: PipelineConfig) -> ImageCleanConfig:
    """The configured rules, on the canonical columns ingest wrote."""
    return dataclasses.replace(cfg.data.image.clean, image_column=IMAGE, label_column=LABEL)


def image_size(cfg: PipelineConfig) -> int:
    """The side every image has after clean (config validation makes it square)."""
    return int(cfg.data.image.clean.size.height)


def image_background(cfg: PipelineConfig) -> tuple[int, int, int]:
    """data.image.clean.background as (R, G, B): what transparent pixels become."""
    return cfg.data.image.clean.background_rgb


def class_names(layout: Layout) -> list[str]:
    return list(read_json(layout.schema_file)["classes"])


def split_arrays(
    path: Path, size: int, classes: list[str], background: tuple[int, ...] = (255, 255, 255)
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (n, 3, size, size) and class indices (n,) of one split file; images that
    still carry transparency (data.image.clean.mode.target RGBA) are composited onto
    `background` (image_background)."""
    from pipelines.modalities.image.preprocess import decode_images

    ds = read_split(path)
    index = {name: i for i, name in enumerate(classes)}
    labels = [str(v) for v in ds[LABEL][:]]
    unknown = sorted({v for v in labels if v not in index})
    if unknown:
        raise PipelineError(
            f"{path}: label(s) {unknown[:3]} not in the label map of {len(classes)} classes "
            "(data/ingested/schema.json); rerun ingest"
        )
    return decode_images(ds, size, IMAGE, background), np.array(
        [index[v] for v in labels], dtype=np.int64
    )
