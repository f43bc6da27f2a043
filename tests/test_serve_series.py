"""The server on a series export folder: a tiny untrained Inception model over three sensor
channels, exported by the series export code, served by pipelines.serve over real HTTP with
the card choosing the series input. Raw windows answer what the folder's own scorer
(score_windows) gives, alone and batched; every malformed window is a 4xx naming where it is
wrong, counted by kind; each channel's level and spread feed the drift gauges."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from pipelines.modalities.timeseries.drift_features import (
    series_drift_features,
    series_drift_rows,
)
from pipelines.modalities.timeseries.export_folder import (
    score_windows,
    series_preprocessing,
    write_series_export,
)
from pipelines.models.timeseries import build_series_model, export_series_onnx
from tests.serve_helpers import post_all, running_server
from tests.test_serve_modalities import (
    BATCHING,
    _check_bad,
    _psi,
    _with_reference,
    assert_same_predictions,
)
from tests.tiny_models import small_model_config

CHANNELS, LENGTH = ["temperature", "vibration", "current"], 32
NAMES = ["normal", "bearing_wear", "overheating"]


@pytest.fixture(scope="module")
def series_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("series")
    torch.manual_seed(0)
    cfg = small_model_config("ts_inception_dense", hidden_dim=8)
    model = build_series_model(len(NAMES), len(CHANNELS), LENGTH, cfg).eval()
    export_series_onnx(model, work / "model.onnx", 17, len(CHANNELS), LENGTH)
    # readings far from 0 and of different scales: the train statistics must be applied
    prep = series_preprocessing(CHANNELS, 10.0, LENGTH, 16, [40.0, 0.5, 3.0], [5.0, 0.1, 0.8])
    card = {"task": "timeseries classification", "model": "ts_inception_dense"}
    write_series_export(work / "export", work / "model.onnx", NAMES, prep, card)
    return work / "export"


def windows(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mean = np.array([40.0, 0.5, 3.0]).reshape(1, 3, 1)
    std = np.array([5.0, 0.1, 0.8]).reshape(1, 3, 1)
    return mean + std * rng.normal(size=(n, len(CHANNELS), LENGTH)) * rng.uniform(0.5, 3, (n, 1, 1))


def test_a_series_folder_answers_what_its_own_scorer_gives_alone_and_batched(
    series_folder,
) -> None:
    raw = windows(8)
    reference = score_windows(series_folder, raw)
    assert len({p["label"] for p in reference}) > 1  # the windows are not all one class
    with running_server(series_folder, *BATCHING) as srv:
        card = httpx.get(f"{srv.url}/model").json()
        alone = httpx.post(f"{srv.url}/predict", json={"windows": raw.tolist()})
        answers = post_all(srv.url, [{"windows": [w.tolist()]} for w in raw])
    assert card["modality"] == "timeseries" and card["labels"] == NAMES
    assert alone.status_code == 200, alone.text
    assert_same_predictions(alone.json()["predictions"], reference, NAMES)
    assert all(a.status_code == 200 for a in answers)
    assert max(int(a.headers["x-batch-requests"]) for a in answers) > 1
    assert_same_predictions([a.json()["predictions"][0] for a in answers], reference, NAMES)


def _window(**change) -> list:
    """One good window (channels x readings) as JSON, with `change` = {"c,t": value}."""
    window = windows(1)[0].tolist()
    for where, value in change.items():
        c, t = (int(v) for v in where.split("_")[1:])
        window[c][t] = value
    return window


SERIES_BAD = [
    # (name, JSON body, status, kind, words the reason must hold)
    ("no windows key", {"window": []}, 422, "missing_field", ["'windows'"]),
    ("windows not a list", {"windows": 3}, 422, "wrong_type", ["'windows'", "list"]),
    ("no windows", {"windows": []}, 422, "empty", ["'windows'", "empty"]),
    (
        "too few channels",
        {"windows": [_window(), _window()[:2]]},
        422,
        "wrong_shape",
        ["'windows[1]'", "3 channels (temperature, vibration, current)", "got 2 channels"],
    ),
    (
        "a short channel",
        {"windows": [[*_window()[:2], _window()[2][:30]]]},
        422,
        "wrong_shape",
        ["'windows[0][2]'", "'current'", "32 readings, got 30"],
    ),
    ("a window not a list", {"windows": ["abc"]}, 422, "wrong_shape", ["'windows[0]'", "str"]),
    (
        "a reading not a number",
        {"windows": [_window(at_1_5="0.5")]},
        422,
        "wrong_type",
        ["'windows[0][1][5]'", "number", "str"],
    ),
    ("a boolean reading", {"windows": [_window(at_0_0=True)]}, 422, "wrong_type", ["[0][0][0]"]),
    (
        "beyond float32",
        {"windows": [_window(at_2_7=1e39)]},
        422,
        "non_finite",
        ["'windows[0][2][7]'", "'current'", "finite float32"],
    ),
    ("too many windows", {"windows": [_window()] * 5}, 413, "too_many_rows", ["'windows'", "5"]),
]


def test_every_bad_series_request_is_a_4xx_naming_the_field_counted_by_kind(
    series_folder,
) -> None:
    with running_server(series_folder, "serve.max_rows_per_request=4") as srv:
        page = _check_bad(srv.url, SERIES_BAD, {"windows": [_window()]})
    for _, _, _, kind, _ in SERIES_BAD:
        assert page[("serve_errors_total", (("kind", kind),))] >= 1, kind


def test_series_drift_stays_low_on_training_like_windows_and_flags_a_shifted_noisy_sensor(
    series_folder, tmp_path: Path
) -> None:
    features = series_drift_features(CHANNELS)
    folder = _with_reference(series_folder, tmp_path, series_drift_rows(windows(600, 1)), features)
    same = windows(300, seed=2)
    moved = windows(300, seed=3)
    moved[:, 0] += 15.0  # the temperature sensor reads 3 train stds higher
    moved[:, 1] = 0.5 + 4 * (moved[:, 1] - 0.5)  # the vibration sensor came loose
    window = ("serve.drift.window_rows=300", "serve.drift.min_rows=150")
    with running_server(folder, *window) as srv:
        for start in range(0, 300, 50):
            post_all(srv.url, [{"windows": same[start : start + 50].tolist()}])
        calm = _psi(srv.url)
        for start in range(0, 300, 50):  # replaces the whole window
            post_all(srv.url, [{"windows": moved[start : start + 50].tolist()}])
        drifted = _psi(srv.url)
    assert set(calm) == set(features) and len(features) == 2 * len(CHANNELS)
    assert max(calm.values()) < 0.1, calm
    assert drifted["temperature_mean"] > 0.25 and drifted["vibration_std"] > 0.25, drifted
    # the untouched channel stays calm: the gauges name the sensor that moved
    assert drifted["current_mean"] < 0.1 and drifted["current_std"] < 0.1, drifted
