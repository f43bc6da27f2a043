"""Split by time for series (data.split.method = time): every series is cut at two instants
of its own clock, its first part to train, the next to val, the last to test, as a table is
split by its time column. Each part becomes a series of its own (id `<series>@<split>`) and
windows are cut later within a part, so no window holds samples of two splits and nothing a
model is scored on comes before what it learnt from."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pipelines.errors import PipelineError
from pipelines.modalities.timeseries.series import (
    LABEL,
    SERIES_ID,
    TIME,
    VALUES,
    series_table,
    series_times,
    series_values,
)

if TYPE_CHECKING:
    from datasets import Dataset

SPLIT_ORDER = ("train", "val", "test")


def cut_points(t: np.ndarray, val_fraction: float, test_fraction: float) -> tuple[float, float]:
    """The two instants (seconds on the series' clock) where val and then test begin: the
    shares are of the series' duration, not of its samples, so a gap or a burst of repeated
    timestamps does not move the cut."""
    start, stop = float(t[0]), float(t[-1])
    duration = stop - start
    return (
        start + duration * (1.0 - val_fraction - test_fraction),
        start + duration * (1.0 - test_fraction),
    )


def split_in_time(
    table: Dataset, val_fraction: float, test_fraction: float
) -> tuple[Dataset, dict[str, np.ndarray], int]:
    """(the table of parts, the rows of each split in it, how many parts held no sample and
    were left out). A part too short for a window is kept: clean's too_short rule quarantines
    it with its reason, as it does a short series."""
    if val_fraction + test_fraction >= 1.0:
        raise PipelineError(
            f"config key 'data.split': val_fraction={val_fraction} + test_fraction="
            f"{test_fraction} leave no time for train; expected a sum below 1"
        )
    rows: dict[str, list] = {SERIES_ID: [], LABEL: [], TIME: [], VALUES: []}
    members: dict[str, list[int]] = {name: [] for name in SPLIT_ORDER}
    empty = 0
    for series_id, label, t, values in zip(
        table[SERIES_ID], table[LABEL], series_times(table), series_values(table), strict=True
    ):
        val_start, test_start = cut_points(t, val_fraction, test_fraction)
        # each sample belongs to exactly one part: [start, val_start), [val_start, test_start),
        # [test_start, stop]
        part_of = np.searchsorted([val_start, test_start], t, side="right")
        for index, name in enumerate(SPLIT_ORDER):
            keep = part_of == index
            if not keep.any():
                empty += 1
                continue
            members[name].append(len(rows[SERIES_ID]))
            rows[SERIES_ID].append(f"{series_id}@{name}")
            rows[LABEL].append(label)
            rows[TIME].append(t[keep] - t[keep][0])
            rows[VALUES].append(values[:, keep])
    return series_table(rows), {k: np.asarray(v, np.int64) for k, v in members.items()}, empty
