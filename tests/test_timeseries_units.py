"""Channels that arrive in other units (data.timeseries.given_units) are converted by clean
to the unit the model reads (data.timeseries.units), with the conversion in clean's metrics;
a unit the project does not know, or one of another quantity, stops the config load in one
line naming the channel and the key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipelines.errors import PipelineError
from pipelines.io import read_split
from pipelines.layout import Layout
from pipelines.modalities.timeseries.series import series_values
from pipelines.modalities.timeseries.units import converter
from tests.modality_runs import SMALL_SERIES, run, small_config
from tests.test_timeseries_data import long_format, machines


def series_config(tmp: Path, *extra: str):
    return small_config("machine_monitoring", SMALL_SERIES, tmp, *extra)


def test_the_conversions_are_scipy_constants_ones() -> None:
    x = np.array([32.0, 212.0, np.nan], np.float32)
    assert np.allclose(converter("degF", "degC")(x), [0.0, 100.0, np.nan], equal_nan=True)
    assert converter("degF", "degC")(x).dtype == np.float32
    assert np.allclose(converter("K", "degC")(np.array([273.15])), [0.0])
    assert np.allclose(converter("m/s^2", "g")(np.array([9.80665])), [1.0])
    assert np.allclose(converter("mA", "A")(np.array([1500.0])), [1.5])
    assert np.allclose(converter("rpm", "Hz")(np.array([3000.0])), [50.0])
    assert np.allclose(converter("psi", "kPa")(np.array([1.0])), [6.894757])


def test_clean_converts_a_channel_given_in_another_unit_and_says_so(tmp_path: Path) -> None:
    frame = machines(n=24)
    given = frame.assign(temperature=frame.temperature * 9 / 5 + 32, current=frame.current * 1e3)
    extra = [*long_format(tmp_path, given), "data.timeseries.given_units.temperature=degF",
             "data.timeseries.given_units.current=mA"]  # fmt: skip
    cfg = series_config(tmp_path, *extra)
    run("ingest", cfg, tmp_path)
    report = run("clean", cfg, tmp_path)
    assert report["units_converted"] == {"temperature": "degF -> degC",
                                         "current": "mA -> A (x 0.001)"}  # fmt: skip
    layout = Layout(tmp_path)
    cleaned = read_split(layout.split(layout.cleaned, "train"))
    by_machine = {m: g for m, g in frame.groupby("machine")}
    for series_id, values in zip(cleaned["series_id"], series_values(cleaned), strict=True):
        original = by_machine[series_id]
        assert np.allclose(values[2], original.temperature.to_numpy(), atol=1e-3)
        assert np.allclose(values[1], original.current.to_numpy(), atol=1e-4)
        # the channel declared in its own unit is read as it came
        assert np.allclose(values[0], original.vibration.to_numpy(), atol=1e-5)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.timeseries.given_units.temperature=fahrenheit",
         r"data\.timeseries\.given_units\.temperature = 'fahrenheit': expected a unit among "
         r"m/s\^2, g, .*degF"),
        ("data.timeseries.units.current=amps",
         r"data\.timeseries\.units\.current = 'amps': expected a unit among"),
        ("data.timeseries.given_units.temperature=mA",
         r"data\.timeseries\.given_units\.temperature = 'mA': expected a temperature unit like "
         r"data\.timeseries\.units\.temperature = 'degC'"),
        ("+data.timeseries.given_units.pressure=psi",
         r"data\.timeseries\.given_units\.pressure = 'psi': expected a channel among "
         r"data\.timeseries\.channels \(vibration, current, temperature\)"),
    ],
    ids=["unknown given unit", "unknown wanted unit", "other quantity", "undeclared channel"],
)  # fmt: skip
def test_a_bad_unit_stops_the_config_naming_channel_and_key(
    tmp_path: Path, override: str, message: str
) -> None:
    with pytest.raises(PipelineError, match=message) as caught:
        series_config(tmp_path, override)
    assert "\n" not in str(caught.value)
