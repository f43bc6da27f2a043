"""Split by time for series (data.split.method = time): every series is cut at two instants of
its own clock, train before val before test; the parts together are the series, no sample (so
no window) belongs to two splits, and the windows the model reads come from one part each."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipelines.errors import PipelineError
from pipelines.io import read_split
from pipelines.layout import Layout
from pipelines.modalities.timeseries.config import SimulatorConfig
from pipelines.modalities.timeseries.series import series_times, series_values, windows
from pipelines.modalities.timeseries.simulator import simulate_series
from pipelines.modalities.timeseries.timesplit import split_in_time
from tests.modality_runs import SMALL_SERIES, run, small_config

SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def machines() -> object:
    return simulate_series(12, 3, SimulatorConfig(samples=400), 200.0)


def test_each_series_is_cut_into_train_then_val_then_test(machines: object) -> None:
    parts, members, empty = split_in_time(machines, val_fraction=0.2, test_fraction=0.25)
    assert empty == 0
    ids = parts["series_id"]
    for split, rows in members.items():
        assert {ids[i].rsplit("@", 1)[1] for i in rows} == {split}
    values, times = series_values(parts), series_times(parts)
    by_id = dict(zip(ids, range(len(ids)), strict=True))
    for series_id, original, clock in zip(
        machines["series_id"], series_values(machines), series_times(machines), strict=True
    ):
        pieces = [by_id[f"{series_id}@{s}"] for s in SPLITS]
        # the three parts, in split order, are the series: every sample in exactly one part
        joined = np.concatenate([values[i] for i in pieces], axis=1)
        assert np.array_equal(joined, original, equal_nan=True)
        # each part starts its own clock; its share of the duration is the declared one
        lengths = [values[i].shape[1] for i in pieces]
        assert all(times[i][0] == 0.0 for i in pieces)
        duration = clock[-1] - clock[0]
        assert abs(lengths[2] / 200.0 - 0.25 * duration) <= 1 / 200.0
        assert abs(lengths[1] / 200.0 - 0.2 * duration) <= 1 / 200.0


def test_no_window_holds_samples_of_two_splits(machines: object) -> None:
    parts, members, _ = split_in_time(machines, val_fraction=0.2, test_fraction=0.25)
    values = series_values(parts)
    # samples are told apart by value (float noise never repeats a whole channel-column)
    seen: dict[bytes, str] = {}
    for split, rows in members.items():
        x, _, _ = windows([values[i] for i in rows], np.zeros(len(rows)), 32, 8)
        for window in x:
            for column in window.T:
                assert seen.setdefault(column.tobytes(), split) == split


def test_ingest_splits_by_time_and_clean_keeps_the_parts(tmp_path: Path) -> None:
    cfg = small_config("machine_monitoring", SMALL_SERIES, tmp_path, "data.source.rows=100",
                       "data.timeseries.simulator.samples=768", "data.split.method=time",
                       "data.split.val_fraction=0.2", "data.split.test_fraction=0.2",
                       # the faults develop over time (overheating drifts up): a series' last
                       # part differs from its first, the shift a time split exists to show
                       "data.timeseries.profile.gates.max_channel_psi=10")  # fmt: skip
    rows = run("ingest", cfg, tmp_path)
    assert rows == {"train": 100, "val": 100, "test": 100}
    layout = Layout(tmp_path)
    schema = json.loads(layout.schema_file.read_text())
    assert schema["time_split"] == {"parts_without_samples": 0}
    ids = {s: read_split(layout.split(layout.ingested, s))["series_id"] for s in SPLITS}
    assert {i.rsplit("@", 1)[0] for i in ids["train"]} == {i.rsplit("@", 1)[0] for i in
                                                            ids["test"]}  # fmt: skip
    assert all(i.endswith(f"@{s}") for s in SPLITS for i in ids[s])
    run("profile", cfg, tmp_path)
    cleaned = run("clean", cfg, tmp_path)
    # the simulator's dirt still reaches its rules, each part judged on its own
    assert cleaned["rows_out"]["test"] > 0


def test_time_split_fractions_that_leave_no_train_time_are_refused(machines: object) -> None:
    with pytest.raises(PipelineError, match=r"'data\.split': val_fraction=0\.5 \+ "
                       r"test_fraction=0\.5 leave no time for train"):  # fmt: skip
        split_in_time(machines, val_fraction=0.5, test_fraction=0.5)
