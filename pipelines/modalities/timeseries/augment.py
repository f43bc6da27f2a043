"""The train split topped up per class: each class below min_class_share of the largest
class's series gets transformed copies of its own series (Um et al. 2017, "Data augmentation
of wearable sensor data"; Le Guennec et al. 2016, window slicing; Iwana & Uchida 2021's
survey): jitter, per-channel scaling, magnitude warping, time warping, window slicing, and
mixing with a second series of the same class. Each copy is drawn by its own generator seeded
by (seed, copy number)."""

from __future__ import annotations

from typing import Any

import numpy as np

from pipelines.modalities.timeseries.config import AugmentConfig
from pipelines.modalities.timeseries.series import (
    LABEL,
    SERIES_ID,
    TIME,
    VALUES,
    series_table,
    series_values,
)

KNOTS = 4  # of the smooth warping curves


def augment_train(train: Any, cfg: AugmentConfig, seed: int, rate_hz: float) -> tuple[Any, dict]:
    """(train with the top-up copies appended, report: copies per class)."""
    import datasets

    labels = np.asarray(train[LABEL])
    counts = {c: int((labels == c).sum()) for c in sorted(set(labels))}
    target = int(np.ceil(cfg.min_class_share * max(counts.values())))
    added = {c: max(0, target - n) if cfg.enabled else 0 for c, n in counts.items()}
    if not any(added.values()):
        return train, {"series_in": len(train), "added": added}
    values = series_values(train)
    rows: dict[str, list] = {SERIES_ID: [], LABEL: [], TIME: [], VALUES: []}
    copy = 0
    for name, n in added.items():
        members = np.flatnonzero(labels == name)
        for _ in range(n):
            rng = np.random.default_rng([seed, copy])
            first, second = rng.choice(members, size=2)
            out = transform(values[first], values[second], cfg, rng)
            rows[SERIES_ID].append(f"{train[int(first)][SERIES_ID]}-aug{copy}")
            rows[LABEL].append(name)
            rows[TIME].append(np.arange(out.shape[1]) / rate_hz)
            rows[VALUES].append(out)
            copy += 1
    combined = datasets.concatenate_datasets([train, series_table(rows)])
    return combined, {"series_in": len(train), "added": added}


def transform(x: np.ndarray, other: np.ndarray, cfg: AugmentConfig, rng) -> np.ndarray:
    """One transformed copy of x (channels, samples); `other` is a same-class series."""
    channels, n = x.shape
    out = x.astype(np.float64)
    if cfg.mix_share > 0:
        m = min(n, other.shape[1])
        out[:, :m] = (1 - cfg.mix_share) * out[:, :m] + cfg.mix_share * other[:, :m]
    if cfg.slice_ratio < 1:
        width = max(2, int(n * cfg.slice_ratio))
        start = int(rng.integers(0, n - width + 1))
        out = stretch(out[:, start : start + width], n)
    if cfg.time_warp_std > 0:
        speeds = np.clip(smooth_curve(n, cfg.time_warp_std, rng), 0.1, None)
        clock = np.cumsum(speeds)
        clock = (clock - clock[0]) / (clock[-1] - clock[0]) * (n - 1)
        out = np.stack([np.interp(np.arange(n), clock, ch) for ch in out])
    scale = out.std(axis=1, keepdims=True) + 1e-12
    centre = out.mean(axis=1, keepdims=True)
    if cfg.magnitude_warp_std > 0:
        out = centre + (out - centre) * smooth_curve(n, cfg.magnitude_warp_std, rng)
    if cfg.scaling_std > 0:
        out = centre + (out - centre) * rng.normal(1.0, cfg.scaling_std, (channels, 1))
    if cfg.jitter_std > 0:
        out = out + rng.normal(0.0, cfg.jitter_std, out.shape) * scale
    return out.astype(np.float32)


def smooth_curve(n: int, std: float, rng) -> np.ndarray:
    """A cubic-spline curve through KNOTS + 2 points ~ N(1, std), sampled at n points."""
    from scipy.interpolate import CubicSpline

    knots = np.linspace(0, n - 1, KNOTS + 2)
    return CubicSpline(knots, rng.normal(1.0, std, KNOTS + 2))(np.arange(n))


def stretch(x: np.ndarray, n: int) -> np.ndarray:
    """x (channels, m) linearly resampled to n samples."""
    old = np.linspace(0, 1, x.shape[1])
    new = np.linspace(0, 1, n)
    return np.stack([np.interp(new, old, ch) for ch in x])
