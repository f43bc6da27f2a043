"""Sensor series: {"windows": [[[reading, ...] per channel] per window, ...]}, raw readings
in the card's channel order, at its sampling rate, `window_length` of them per channel (what
examples/windows.json in the export folder holds), normalised by the export folder's own code
(pipelines.modalities.timeseries.export_folder.normalise_windows, what its scorer runs), so
the server and the folder's snippet cannot prepare a window differently."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from pipelines.core.folder_scoring import CARD
from pipelines.errors import PipelineError
from pipelines.modalities.timeseries.drift_features import (
    series_drift_features,
    series_drift_rows,
)
from pipelines.modalities.timeseries.export_folder import WINDOWS, normalise_windows
from pipelines.serve.config import ServeConfig
from pipelines.serve.inputs.base import InputAdapter, Parsed
from pipelines.serve.requests import BadRequest, describe, listed, parse_json


class SeriesInput(InputAdapter):
    modality = "timeseries"
    example = '{"windows": [[[reading, ...] per channel], ...]}'
    input_key = WINDOWS

    def __init__(self, preprocessing: dict[str, Any]) -> None:
        self.preprocessing = preprocessing
        self.channels = [str(c) for c in preprocessing["channels"]]
        self.length = int(preprocessing["window_length"])
        self._signature = json.dumps([self.modality, preprocessing], sort_keys=True)

    @classmethod
    def open(
        cls, folder: Path, card: dict[str, Any], session: ort.InferenceSession, cfg: ServeConfig
    ) -> SeriesInput:
        prep = card.get("preprocessing")
        keys = ("channels", "window_length", "mean", "std")
        if not isinstance(prep, dict) or any(key not in prep for key in keys):
            raise PipelineError(
                f"{folder / CARD}: key 'preprocessing': expected {', '.join(keys)}; a series "
                "export's card states how raw readings become the model's input"
            )
        adapter = cls(prep)
        try:  # a card the folder's own code cannot apply: refuse it now, not per request
            normalise_windows(np.zeros((1, len(adapter.channels), adapter.length)), prep)
        except (ValueError, TypeError) as err:
            raise PipelineError(f"{folder / CARD}: key 'preprocessing': {err}") from None
        return adapter

    def parse(self, body: bytes, content_type: str, max_rows: int) -> Parsed:
        windows = listed(parse_json(body), WINDOWS, self.example, "window", max_rows)
        raw = np.stack([self._readings(i, w) for i, w in enumerate(windows)])
        if not np.isfinite(raw).all():  # float32 overflow of a huge reading
            i, c, t = (int(v) for v in np.argwhere(~np.isfinite(raw))[0])
            raise BadRequest(
                422,
                "non_finite",
                f"field 'windows[{i}][{c}][{t}]' (channel {self.channels[c]!r}): "
                f"{windows[i][c][t]!r} is not a finite float32",
            )
        drift = series_drift_rows(raw)
        return Parsed(normalise_windows(raw, self.preprocessing), len(raw), drift=drift)

    @property
    def drift_features(self) -> list[str]:
        return series_drift_features(self.channels)

    def _readings(self, i: int, window: Any) -> np.ndarray:
        """One window as float32 [channels, length], or a 422 naming where it is wrong."""
        shape = f"{len(self.channels)} channels ({', '.join(self.channels)}) x {self.length}"
        if not isinstance(window, list) or len(window) != len(self.channels):
            got = f"{len(window)} channels" if isinstance(window, list) else describe(window)
            raise BadRequest(
                422, "wrong_shape", f"field 'windows[{i}]': expected {shape} readings, got {got}"
            )
        for c, channel in enumerate(window):
            where = f"field 'windows[{i}][{c}]' (channel {self.channels[c]!r})"
            if not isinstance(channel, list) or len(channel) != self.length:
                got = f"{len(channel)}" if isinstance(channel, list) else describe(channel)
                raise BadRequest(
                    422, "wrong_shape", f"{where}: expected {self.length} readings, got {got}"
                )
            for t, value in enumerate(channel):
                # exact types: bool is an int subclass and numpy would read "1.5" as a number
                if type(value) is not float and type(value) is not int:
                    raise BadRequest(
                        422,
                        "wrong_type",
                        f"field 'windows[{i}][{c}][{t}]': expected a number, got {describe(value)}",
                    )
        with np.errstate(over="ignore"):  # a reading beyond float32 becomes inf: refused above
            try:
                return np.asarray(window, dtype=np.float32)
            except OverflowError:  # an int beyond float range
                return np.full((len(self.channels), self.length), np.inf, dtype=np.float32)

    def collate(self, parts: list[Any]) -> dict[str, np.ndarray]:
        return {WINDOWS: parts[0] if len(parts) == 1 else np.concatenate(parts)}

    def warm_input(self, rows: int) -> Any:
        # normalised windows of readings at the train mean
        return np.zeros((rows, len(self.channels), self.length), dtype=np.float32)
