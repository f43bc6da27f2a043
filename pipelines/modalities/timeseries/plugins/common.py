"""What the series plug-ins of several stages share: the label map and a split file as the
model's windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines.config import PipelineConfig
from pipelines.errors import PipelineError
from pipelines.io import read_json, read_split
from pipelines.layout import Layout
from pipelines.modalities.timeseries.series import LABEL, series_values, windows


def class_names(layout: Layout) -> list[str]:
    return list(read_json(layout.schema_file)["classes"])


def split_windows(
    path: Path, cfg: PipelineConfig, classes: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Raw float32 windows (n, channels, length) and class indices of one split file."""
    ds = read_split(path)
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted({v for v in ds[LABEL] if v not in index})
    if unknown:
        raise PipelineError(
            f"{path}: label(s) {unknown[:3]} not in the label map of {len(classes)} classes "
            "(data/ingested/schema.json); rerun ingest"
        )
    labels = np.array([index[v] for v in ds[LABEL]], dtype=np.int64)
    window = cfg.data.timeseries.window
    x, y, _ = windows(series_values(ds), labels, window.length, window.stride)
    if not len(x):
        raise PipelineError(
            f"{path}: no series holds a window of data.timeseries.window.length = "
            f"{window.length} samples"
        )
    return x, y
