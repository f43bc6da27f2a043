"""One export folder of any modality loaded for serving: the ONNX session, the model card, the
input adapter its modality names (pipelines.serve.inputs), its class labels and the training
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

from pipelines.core.folder_scoring import CARD as CARD_FILE
from pipelines.core.folder_scoring import LABELS, PROBABILITIES
from pipelines.core.folder_scoring import MODEL as MODEL_FILE
from pipelines.drift_reference import REFERENCE_FILE, read_reference_profile
from pipelines.errors import PipelineError
from pipelines.runtime import session as ort_session
from pipelines.serve.config import ServeConfig
from pipelines.serve.drift import DriftMonitor
from pipelines.serve.inputs import InputAdapter, adapter_class


@dataclass
class LoadedModel:
    folder: Path
    card: dict[str, Any]
    session: ort.InferenceSession
    adapter: InputAdapter  # the modality's requests: parse, collate, warm-up input
    output_name: str
    version: str
    # the class of each probability column (labels.json); None: a binary model's one score
    labels: list[str] | None
    reference: dict[str, Any] | None  # None: no drift profile in the folder (no drift)
    decision_threshold: float | None
    drift: DriftMonitor | None = None  # this model's window: a reload starts a fresh one

    @property
    def features(self) -> list[str] | None:
        return getattr(self.adapter, "features", None)

    def score(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """float32 [rows] probabilities of a binary model, [rows, classes] of a multi-class
        one, for the adapter's collated feeds."""
        out = self.session.run([self.output_name], feeds)[0]
        rows = len(next(iter(feeds.values())))
        scores = np.asarray(out, dtype=np.float32).reshape(rows, -1)
        width = 1 if self.labels is None else len(self.labels)
        if scores.shape[1] != width:
            expected = f"[{rows}]" if self.labels is None else f"[{rows}, {width}]"
            raise RuntimeError(f"model output has shape {list(out.shape)}, expected {expected}")
        return scores[:, 0] if self.labels is None else scores

    def warm(self, max_batch: int, rounds: int) -> None:
        """A few inferences at both ends of the batch range, so the first requests do not pay
        ORT's lazy allocations and the scores are known to be finite before /ready says yes."""
        for rows in sorted({1, max_batch}):
            feeds = self.adapter.collate([self.adapter.warm_input(rows)])
            for _ in range(rounds):
                scores = self.score(feeds)
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
    if not isinstance(card, dict):
        raise PipelineError(f"{path}: expected a JSON object")
    return card


def _read_labels(folder: Path, session: ort.InferenceSession) -> list[str] | None:
    """labels.json's classes for a graph with more than one output column; None for a binary
    model's single probability."""
    width = (session.get_outputs()[0].shape or [None])[-1]
    path = folder / LABELS
    if not path.is_file():
        if isinstance(width, int) and width > 1:
            raise PipelineError(f"{path}: not found; the graph outputs {width} classes")
        return None
    try:
        labels = json.loads(path.read_text(encoding="utf-8"))["labels"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise PipelineError(f'{path}: expected {{"labels": [...]}}: {err}') from None
    if isinstance(width, int) and width != len(labels):
        raise PipelineError(f"{path}: {len(labels)} labels for a graph of {width} outputs")
    return [str(label) for label in labels]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_model(folder: str | Path, cfg: ServeConfig) -> LoadedModel:
    """Load and verify an export folder of any modality; any defect is a PipelineError
    naming the file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PipelineError(f"{folder}: export folder not found (run `dvc repro` first)")
    card = _read_card(folder)
    adapter_type = adapter_class(card, str(folder / CARD_FILE))
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
    try:
        session = ort_session(model_path, threads=cfg.threads)
    except Exception as err:  # ORT raises its own exception types for bad graphs
        raise PipelineError(f"{model_path}: ONNX Runtime cannot load it: {err}") from None
    adapter = adapter_type.open(folder, card, session, cfg)
    outputs = [o.name for o in session.get_outputs()]
    output_name = PROBABILITIES if PROBABILITIES in outputs else outputs[0]
    measured = adapter.drift_features
    reference_path = folder / REFERENCE_FILE
    reference = (
        read_reference_profile(reference_path, measured)
        if measured and reference_path.is_file()
        else None
    )
    # the card's own version when it has one; else name, variant and the model's hash, so two
    # exports of the same config with different weights never share a version
    name = f"{card.get('model', 'model')}-{card.get('variant', 'onnx')}"
    version = str(card.get("version") or f"{name}-{digest[:12]}")
    threshold = card.get("decision_threshold")
    window = cfg.drift.window_rows
    drift = DriftMonitor(reference, measured, window) if reference else None
    return LoadedModel(
        folder=folder,
        card=card,
        session=session,
        adapter=adapter,
        output_name=output_name,
        version=version,
        labels=_read_labels(folder, session),
        reference=reference,
        decision_threshold=float(threshold) if isinstance(threshold, int | float) else None,
        drift=drift,
    )


def load_warm(folder: str | Path, cfg: ServeConfig) -> LoadedModel:
    """Load, verify and warm `folder`: ready for traffic."""
    model = load_model(folder, cfg)
    model.warm(cfg.max_batch, cfg.warmup_rounds)
    return model


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

    def load(self, folder: str | Path, cfg: ServeConfig) -> LoadedModel:
        """Load and warm `folder` off to the side, then swap; on failure the old model stays."""
        with self._lock:
            model = load_warm(folder, cfg)
            self._model = model
            return model

    def promote(self, model: LoadedModel) -> None:
        """Make an already loaded and warmed model (a canary) the current one."""
        with self._lock:
            self._model = model
