"""What the model server's series drift gauges measure of each window: one definition for the
export's reference (the clean train split's windows, pipelines.modalities.timeseries.plugins.
export) and for the server's window of traffic (pipelines.serve.inputs.series), so both sides
bin the same quantity.

Per channel, of the raw readings in the card's units (before the train mean and std are
applied, which would hide both):
- `<channel>_mean`: the window's level. A sensor recalibrated, moved, or sending another unit
  shifts it.
- `<channel>_std`: the window's spread. A loose mounting, a failing sensor or a stuck one
  (spread near 0) moves it.
"""

from __future__ import annotations

import numpy as np

STATISTICS = ("mean", "std")


def series_drift_features(channels: list[str]) -> list[str]:
    """The names of series_drift_rows' columns, channel by channel."""
    return [f"{channel}_{statistic}" for channel in channels for statistic in STATISTICS]


def series_drift_rows(raw: np.ndarray) -> np.ndarray:
    """[windows, channels x 2] float64: each channel's mean and std over a window, for raw
    readings [windows, channels, length]."""
    readings = np.asarray(raw, dtype=np.float64)
    stats = np.stack([readings.mean(axis=2), readings.std(axis=2)], axis=2)
    return stats.reshape(len(readings), -1)
