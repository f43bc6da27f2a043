"""The server on a series export folder: a tiny untrained Inception model over three sensor
channels, exported by the series export code, served by pipelines.serve over real HTTP with
the card choosing the series input. Raw windows answer what the folder's own scorer
(score_windows) gives, alone and batched; every malformed window is a 4xx naming where it is
wrong, counted by kind."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from pipelines.modalities.timeseries.export_folder import (
    score_windows,
    series_preprocessing,
    write_series_export,
)
from pipelines.models.timeseries import build_series_model, export_series_onnx
from tests.serve_helpers import post_all, running_server
from tests.test_serve_modalities import BATCHING, _check_bad, assert_same_predictions
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
