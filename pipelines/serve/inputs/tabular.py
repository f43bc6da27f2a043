"""Tables: {"rows": [{feature: number, ...}, ...]} in the card's feature order, one float32
matrix per batch (pipelines.serve.requests.rows_matrix validates each row)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from pipelines.core.folder_scoring import CARD as CARD_FILE
from pipelines.errors import PipelineError
from pipelines.serve.config import ServeConfig
from pipelines.serve.inputs.base import InputAdapter, Parsed
from pipelines.serve.requests import parse_json, rows_matrix


class TabularInput(InputAdapter):
    modality = "tabular"
    example = '{"rows": [{feature: number}]}'
    input_key = "features"

    def __init__(self, features: list[str], input_name: str) -> None:
        self.features, self.input_name = features, input_name
        self._signature = json.dumps([self.modality, input_name, features])

    @classmethod
    def open(
        cls, folder: Path, card: dict[str, Any], session: ort.InferenceSession, cfg: ServeConfig
    ) -> TabularInput:
        path = folder / CARD_FILE
        inputs = card.get("inputs") if isinstance(card.get("inputs"), dict) else {}
        features = inputs.get("features")
        if (
            not isinstance(features, list)
            or not features
            or not all(isinstance(f, str) for f in features)
        ):
            raise PipelineError(f"{path}: key 'inputs.features': expected a list of feature names")
        shape = inputs.get("shape")
        if isinstance(shape, list) and len(shape) != 2:
            # the sequence models read [batch, seq_len, features + 1] histories the caller
            # would have to assemble; rows of raw features are what this adapter validates
            raise PipelineError(
                f"{path}: key 'inputs.shape' = {shape}: the tabular input scores rows "
                "[batch, features]; sequence models are not served"
            )
        declared = session.get_inputs()[0]
        width = declared.shape[-1] if declared.shape else None
        if isinstance(width, int) and width != len(features):
            raise PipelineError(
                f"{folder / 'model.onnx'}: input width {width} differs from the card's "
                f"{len(features)} features"
            )
        return cls(features, declared.name)

    def parse(self, body: bytes, content_type: str, max_rows: int) -> Parsed:
        x = rows_matrix(parse_json(body), self.features, max_rows)
        return Parsed(x, len(x), drift=x)

    def collate(self, parts: list[Any]) -> dict[str, np.ndarray]:
        return {self.input_name: parts[0] if len(parts) == 1 else np.concatenate(parts)}

    def warm_input(self, rows: int) -> Any:
        return np.zeros((rows, len(self.features)), dtype=np.float32)

    @property
    def drift_features(self) -> list[str]:
        return self.features
