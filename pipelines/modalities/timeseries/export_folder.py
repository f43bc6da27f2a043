"""The series model's export folder: everything needed to score raw sensor windows, and
nothing from this repository needed to do it.

    model.onnx        windows (float32, batch x channels x length, normalised) -> probabilities
    labels.json       {"labels": [...]}: the class of each probability column, in order
    model_card.json   the card, the graph's inputs and outputs, and "preprocessing": the
                      channels in order, the sampling rate and window the model was trained
                      on, and the train split's per-channel mean and std

`score_windows` is the reference scorer; it imports only onnxruntime, numpy, the standard
library and pipelines.core.folder_scoring (itself free of this repository).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.core.folder_scoring import CARD, LABELS, MODEL, PROBABILITIES, labelled, open_folder

FILES = (MODEL, LABELS, CARD)
WINDOWS = "windows"  # the graph's input (pipelines.models.timeseries), repeated on purpose
SCORE_BATCH = 256


def series_preprocessing(
    channels: list[str], rate_hz: float, length: int, stride: int, mean: list, std: list
) -> dict[str, Any]:
    return {
        "channels": list(channels),
        "sampling_rate_hz": rate_hz,
        "window_length": length,
        "window_stride": stride,
        "layout": "NCL",
        "dtype": "float32",
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "formula": "x[c, t] = (reading[c, t] - mean[c]) / std[c], in float32, on readings "
        "resampled to sampling_rate_hz with short gaps interpolated (the clean stage)",
    }


def write_series_export(
    folder: Path, onnx_path: Path, classes: list[str], preprocessing: dict, card: dict
) -> None:
    """Copy the graph and describe it; refused before writing when the graph's output width
    is not the number of classes."""
    from pipelines.core.export_folder import checked_graph, write_folder

    checked_graph(onnx_path, classes, "window")
    shape = ["batch", len(preprocessing["channels"]), preprocessing["window_length"]]
    description = "sensor windows normalised as preprocessing says"
    inputs = {WINDOWS: {"dtype": "float32", "shape": shape, "description": description}}
    card = {**card, "preprocessing": preprocessing}
    write_folder(folder, onnx_path, class_names=classes, card=card, inputs=inputs)


def normalise_windows(readings: np.ndarray, preprocessing: dict[str, Any]) -> np.ndarray:
    """Raw windows (n, channels, length, in the card's channel order and rate) as the graph's
    input, with the train split's per-channel mean and std; a ValueError naming the expected
    shape when they are not that. The model server's series input runs this too."""
    prep = preprocessing
    expected = (len(prep["channels"]), prep["window_length"])
    if readings.ndim != 3 or readings.shape[1:] != expected:
        raise ValueError(f"windows of shape {readings.shape}: expected (n, {expected[0]}, "
                         f"{expected[1]}) for channels {prep['channels']}")  # fmt: skip
    mean = np.asarray(prep["mean"], dtype=np.float32).reshape(1, -1, 1)
    std = np.asarray(prep["std"], dtype=np.float32).reshape(1, -1, 1)
    return ((readings.astype(np.float32) - mean) / std).astype(np.float32)


def score_windows(folder: Path, readings: np.ndarray) -> list[dict[str, Any]]:
    """For each raw window (channels x length, in the card's channel order and rate),
    {"label": the most probable class, "probabilities": {label: p}}, from the folder alone."""
    folder = Path(folder)
    labels, model = open_folder(folder, FILES, FILES)
    prep = json.loads((folder / CARD).read_text(encoding="utf-8"))["preprocessing"]
    x = normalise_windows(readings, prep)
    results: list[dict[str, Any]] = []
    for start in range(0, len(x), SCORE_BATCH):
        (probabilities,) = model.run([PROBABILITIES], {WINDOWS: x[start : start + SCORE_BATCH]})
        results.extend(labelled(probabilities, labels))
    return results
