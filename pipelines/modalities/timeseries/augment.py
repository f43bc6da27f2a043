"""The train split topped up per class: each class below min_class_share of the largest
class's series gets transformed copies of its own series (Um et al. 2017, "Data augmentation
of wearable sensor data"; Le Guennec et al. 2016, window slicing; Iwana & Uchida 2021's
survey): jitter, per-channel scaling, magnitude warping, time warping, window slicing, and
mixing with a second series of the same class. The top-up itself (targets, which rows are
copied, the appended rows' AUGMENTED and SOURCE_ID columns) is pipelines.core.augment's."""

from __future__ import annotations

from typing import Any

import numpy as np

from pipelines.core.augment import (
    PlannedCopy,
    append_generated,
    class_targets,
    mark_originals,
    top_up_plan,
)
from pipelines.modalities.timeseries.config import AugmentConfig
from pipelines.modalities.timeseries.series import LABEL, VALUES, series_values

KNOTS = 4  # of the smooth warping curves


def augment_train(train: Any, cfg: AugmentConfig, seed: int) -> tuple[Any, dict[str, Any]]:
    """(train with the top-up copies appended and marked by the core's AUGMENTED and
    SOURCE_ID columns, report: rows before and after, targets and copies per class). A copy
    keeps its source's length, so its clock (copied with it) still fits."""
    original = mark_originals(train, LABEL)
    rows = len(train)
    report: dict[str, Any] = {"added": {}, "rows_before": rows, "rows_after": rows, "targets": {}}
    if not cfg.enabled:
        return original, report
    labels = [str(label) for label in train[LABEL][:]]
    report["targets"] = targets = class_targets(labels, cfg.min_class_share)
    plan = top_up_plan(labels, targets, seed)
    if not plan:
        return original, report
    values = series_values(train)
    members = {name: np.flatnonzero(np.asarray(labels) == name) for name in targets}

    def make_series(content: Any, copy: PlannedCopy) -> np.ndarray:
        # a function of what the copy is (source row, copy number), not of the process
        rng = np.random.default_rng([seed, copy.source, copy.copy])
        other = values[int(rng.choice(members[labels[copy.source]]))]
        return transform(np.asarray(content, np.float32), other, cfg, rng)

    combined, added = append_generated(original, plan, make_series, VALUES, LABEL)
    report.update(added=dict(sorted(added.items())), rows_after=len(combined))
    return combined, report


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
