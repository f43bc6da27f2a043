"""One export folder loaded for serving: the ONNX session, the model card and the training
reference profile, checked against each other before the model takes traffic."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from pipelines.drift_reference import REFERENCE_FILE, read_reference_profile
from pipelines.errors import PipelineError
from pipelines.runtime import session as ort_session
from pipelines.serve.drift import DriftMonitor

CARD_FILE = "model_card.json"
MODEL_FILE = "model.onnx"


@dataclass
class LoadedModel:
    folder: Path
    card: dict[str, Any]
    session: ort.InferenceSession
    features: list[str]
    input_name: str
    version: str
    reference: dict[str, Any] | None  # None: an older export without a profile (no drift)
    decision_threshold: float | None
    drift: DriftMonitor | None = None  # this model's window: a reload starts a fresh one

    def score(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for a float32 [rows, features] matrix, as float32 [rows]."""
        out = self.session.run(None, {self.input_name: x})[0]
        scores = np.asarray(out, dtype=np.float32).reshape(len(x), -1)
        if scores.shape[1] != 1:
            raise RuntimeError(f"model output has shape {list(out.shape)}, expected [{len(x)}]")
        return scores[:, 0]

    def warm(self, max_batch: int, rounds: int) -> None:
        """A few inferences at both ends of the batch range, so the first requests do not pay
        ORT's lazy allocations and the scores are known to be finite before /ready says yes."""
        for rows in sorted({1, max_batch}):
            x = np.zeros((rows, len(self.features)), dtype=np.float32)
            for _ in range(rounds):
                scores = self.score(x)
            if rounds and not np.all(np.isfinite(scores)):
                raise PipelineError(f"{self.folder}: model gives non-finite scores on warm-up")


def _read_card(folder: Path) -> dict[str, Any]:
    path = folder / CARD_FILE
    try:
        card = json.loads(path.read_text())
    except FileNotFoundError:
        raise PipelineError(f"{path}: not found (is {folder} an export folder?)") from None
    except (OSError, json.JSONDecodeError) as err:
        raise PipelineError(f"{path}: not a readable model card: {err}") from None
    inputs = card.get("inputs") if isinstance(card, dict) else None
    features = inputs.get("features") if isinstance(inputs, dict) else None
    if (
        not isinstance(features, list)
        or not features
        or not all(isinstance(f, str) for f in features)
    ):
        raise PipelineError(f"{path}: key 'inputs.features': expected a list of feature names")
    shape = inputs.get("shape")
    if isinstance(shape, list) and len(shape) != 2:
        # the sequence models read [batch, seq_len, features + 1] histories the caller would
        # have to assemble; rows of raw features are what this server validates and scores
        raise PipelineError(
            f"{path}: key 'inputs.shape' = {shape}: the server scores tabular rows "
            "[batch, features]; sequence models are not served"
        )
    return card


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_model(folder: str | Path, threads: int = 1, drift_window: int = 0) -> LoadedModel:
    """Load and verify an export folder; any defect is a PipelineError naming the file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PipelineError(f"{folder}: export folder not found (run `dvc repro` first)")
    card = _read_card(folder)
    model_path = folder / MODEL_FILE
    if not model_path.is_file():
        raise PipelineError(f"{model_path}: not found")
    digest = _sha256(model_path)
    expected = (card.get("sha256") or {}).get(MODEL_FILE)
    if expected and expected != digest:
        # a folder caught mid-copy, or a model swapped without its card: refuse it
        raise PipelineError(
            f"{model_path}: sha256 {digest[:12]}... differs from the model card's "
            f"{str(expected)[:12]}..."
        )
    features: list[str] = card["inputs"]["features"]
    try:
        session = ort_session(model_path, threads=threads)
    except Exception as err:  # ORT raises its own exception types for bad graphs
        raise PipelineError(f"{model_path}: ONNX Runtime cannot load it: {err}") from None
    declared = session.get_inputs()[0]
    width = declared.shape[-1] if declared.shape else None
    if isinstance(width, int) and width != len(features):
        raise PipelineError(
            f"{model_path}: input width {width} differs from the card's {len(features)} features"
        )
    reference_path = folder / REFERENCE_FILE
    reference = (
        read_reference_profile(reference_path, features) if reference_path.is_file() else None
    )
    # the card's own version when it has one; else name, variant and the model's hash, so two
    # exports of the same config with different weights never share a version
    name = f"{card.get('model', 'model')}-{card.get('variant', 'onnx')}"
    version = str(card.get("version") or f"{name}-{digest[:12]}")
    threshold = card.get("decision_threshold")
    drift = DriftMonitor(reference, features, drift_window) if reference and drift_window else None
    return LoadedModel(
        folder=folder,
        card=card,
        session=session,
        features=features,
        input_name=declared.name,
        version=version,
        reference=reference,
        decision_threshold=float(threshold) if isinstance(threshold, int | float) else None,
        drift=drift,
    )


class ModelHolder:
    """The model new requests are validated and scored with. A reload swaps the reference;
    requests already queued keep the model they were validated against (they hold it), so
    nothing in flight is dropped or scored with a feature list it was not checked against."""

    def __init__(self) -> None:
        self._model: LoadedModel | None = None
        self._lock = threading.Lock()  # one load at a time

    @property
    def current(self) -> LoadedModel | None:
        return self._model

    def load(
        self, folder: str | Path, threads: int, max_batch: int, rounds: int, drift_window: int
    ) -> LoadedModel:
        """Load and warm `folder` off to the side, then swap; on failure the old model stays."""
        with self._lock:
            model = load_model(folder, threads, drift_window)
            model.warm(max_batch, rounds)
            self._model = model
            return model
