"""Input drift: population stability index of each feature over a sliding window of served
rows, against the train split's bins shipped in the export folder."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from pipelines.drift_reference import assign_bins, psi


class DriftMonitor:
    """Keeps the bin index of each feature for the last `window_rows` served rows (a ring
    buffer of small ints, so memory is fixed whatever the traffic), and computes PSI when
    asked, i.e. on a Prometheus scrape rather than on the request path."""

    def __init__(self, reference: dict[str, Any], features: list[str], window_rows: int) -> None:
        columns = reference["features"]
        self.features = features
        self.edges = [np.asarray(columns[f]["edges"], dtype=np.float64) for f in features]
        self.expected = [np.asarray(columns[f]["counts"], dtype=np.float64) for f in features]
        self.window_rows = window_rows
        self._bins = np.zeros((window_rows, len(features)), dtype=np.int16)
        self._next = 0  # ring position of the next row
        self._filled = 0
        self._lock = threading.Lock()  # rows arrive from the scoring thread, scrapes elsewhere

    def observe(self, x: np.ndarray) -> None:
        """Record a scored [rows, features] batch."""
        x = x[-self.window_rows :]
        bins = np.column_stack([assign_bins(x[:, j], e) for j, e in enumerate(self.edges)])
        n = len(bins)
        with self._lock:
            positions = (self._next + np.arange(n)) % self.window_rows
            self._bins[positions] = bins
            self._next = (self._next + n) % self.window_rows
            self._filled = min(self._filled + n, self.window_rows)

    @property
    def rows(self) -> int:
        return self._filled

    def psi(self) -> dict[str, float]:
        """PSI per feature over the rows in the window (all of them, however few)."""
        with self._lock:
            window = self._bins[: self._filled].copy()
        if not len(window):
            return {}
        return {
            name: psi(self.expected[j], np.bincount(window[:, j], minlength=len(self.expected[j])))
            for j, name in enumerate(self.features)
        }
