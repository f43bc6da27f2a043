"""The canonical series table every time-series stage reads and writes, and the arrays the
model takes from it.

One row is one series: `series_id` (str), `label` (str), `time` (seconds from its first
sample, float64; ingest keeps the clock as recorded, clean makes it regular) and `values`
(channels x samples, float32, NaN where a reading is missing). Windows are cut after the
split, so no series has windows on both sides of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines.io import arrow_column

if TYPE_CHECKING:
    import datasets

SERIES_ID, LABEL, TIME, VALUES = "series_id", "label", "time", "values"


def features() -> datasets.Features:
    import datasets

    return datasets.Features(
        {
            SERIES_ID: datasets.Value("string"),
            LABEL: datasets.Value("string"),
            TIME: datasets.Sequence(datasets.Value("float64")),
            VALUES: datasets.Sequence(datasets.Sequence(datasets.Value("float32"))),
        }
    )


def series_table(rows: dict[str, list[Any]]) -> datasets.Dataset:
    """The canonical table from columns series_id, label, time (arrays) and values (arrays
    channels x samples)."""
    import datasets

    return datasets.Dataset.from_dict(
        {
            SERIES_ID: [str(s) for s in rows[SERIES_ID]],
            LABEL: [str(v) for v in rows[LABEL]],
            TIME: [np.asarray(t, np.float64) for t in rows[TIME]],
            VALUES: [np.asarray(v, np.float32) for v in rows[VALUES]],
        },
        features=features(),
    )


def series_values(ds: datasets.Dataset) -> list[np.ndarray]:
    """Each row's values as float32 (channels, samples)."""
    return [np.asarray(v, dtype=np.float32) for v in arrow_column(ds, VALUES).to_pylist()]


def series_times(ds: datasets.Dataset) -> list[np.ndarray]:
    return [np.asarray(t, dtype=np.float64) for t in arrow_column(ds, TIME).to_pylist()]


def windows(
    series: list[np.ndarray], labels: np.ndarray, length: int, stride: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every window of `length` samples, `stride` apart, of each series (channels, samples):
    float32 (n, channels, length), each window's label, and the series it came from. A series
    shorter than `length` gives none (clean's min_samples keeps them out)."""
    out, y, source = [], [], []
    for i, values in enumerate(series):
        for start in range(0, values.shape[1] - length + 1, stride):
            out.append(values[:, start : start + length])
            y.append(labels[i])
            source.append(i)
    channels = series[0].shape[0] if series else 0
    x = np.stack(out).astype(np.float32) if out else np.zeros((0, channels, length), np.float32)
    return x, np.asarray(y, dtype=np.int64), np.asarray(source, dtype=np.int64)


def channel_statistics(series: list[np.ndarray]) -> tuple[list[float], list[float]]:
    """Per-channel mean and std over every sample of `series` (the train split only: the
    statistics travel with the model and the export, as image statistics do)."""
    joined = np.concatenate([s.astype(np.float64) for s in series], axis=1)
    std = joined.std(axis=1)
    return [float(v) for v in joined.mean(axis=1)], [float(max(v, 1e-6)) for v in std]


def normalise(x: np.ndarray, mean: list[float], std: list[float]) -> np.ndarray:
    """float32 windows (n, channels, length) -> (x - mean[c]) / std[c], in float32."""
    m = np.asarray(mean, dtype=np.float32).reshape(1, -1, 1)
    s = np.asarray(std, dtype=np.float32).reshape(1, -1, 1)
    return ((x.astype(np.float32) - m) / s).astype(np.float32)
