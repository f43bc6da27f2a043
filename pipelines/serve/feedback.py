"""Label feedback and online quality: every /predict answer's scores wait (bounded: at most
`max_pending` requests, for at most `retention_s`) for POST /feedback to bring their true
labels; joined pairs enter their model version's window of the last `window` labelled rows,
over which the card's own figures are computed at scrape time with scikit-learn (AUROC, AUPRC
for a binary model; accuracy, macro-F1 over the classes present for a multi-class one: the
definitions of the evaluate stage's torchmetrics figures, which the tests check, without
importing torch into the server, seconds of a scrape on the event loop)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, roc_auc_score

from pipelines.serve.config import FeedbackConfig
from pipelines.serve.model import LoadedModel
from pipelines.serve.requests import BadRequest, describe

BINARY_METRICS = ("auroc", "auprc")
MULTICLASS_METRICS = ("accuracy", "macro_f1")


@dataclass
class _Answered:
    model: LoadedModel
    scores: np.ndarray  # [rows] binary, [rows, classes] multi-class
    at: float


class _VersionWindow:
    def __init__(self, model: LoadedModel, size: int) -> None:
        self.model = model
        self.scores: deque[np.ndarray] = deque(maxlen=size)
        self.labels: deque[int] = deque(maxlen=size)


class FeedbackStore:
    def __init__(self, cfg: FeedbackConfig) -> None:
        self.cfg = cfg
        self._pending: OrderedDict[str, _Answered] = OrderedDict()
        self._windows: dict[str, _VersionWindow] = {}
        self._lock = threading.Lock()
        self.expired = 0  # answers dropped unlabelled (age or the size bound)

    def answered(self, request_id: str, model: LoadedModel, scores: np.ndarray) -> None:
        now = time.monotonic()
        with self._lock:
            self._pending[request_id] = _Answered(model, scores, now)
            self._pending.move_to_end(request_id)
            self._evict(now)

    def _evict(self, now: float) -> None:
        oldest = now - self.cfg.retention_s
        while self._pending:
            first = next(iter(self._pending.values()))
            if len(self._pending) <= self.cfg.max_pending and first.at >= oldest:
                return
            self._pending.popitem(last=False)
            self.expired += 1

    @property
    def pending(self) -> int:
        return len(self._pending)

    def label(self, payload: Any) -> dict[str, Any]:
        """Join {"request_id": ..., "label": ...} (or "labels": [...], one per row of the
        request) to the scores it was answered with; BadRequest naming the field otherwise."""
        if not isinstance(payload, dict) or not isinstance(payload.get("request_id"), str):
            raise BadRequest(
                422,
                "missing_field",
                'field \'request_id\': missing; expected {"request_id": "...", "label": ...}',
            )
        request_id = payload["request_id"]
        with self._lock:
            self._evict(time.monotonic())
            answered = self._pending.get(request_id)
        if answered is None:
            raise BadRequest(
                404,
                "unknown_request",
                f"field 'request_id': {request_id[:64]!r} unknown: never answered, already "
                f"labelled, or older than serve.feedback.retention_s = {self.cfg.retention_s:g} s",
            )
        rows = len(answered.scores)
        if "labels" in payload:
            labels, field = payload["labels"], "labels"
            if not isinstance(labels, list) or len(labels) != rows:
                raise BadRequest(
                    422,
                    "wrong_type",
                    f"field 'labels': expected a list of {rows} labels (one per row answered), "
                    f"got {describe(labels)}",
                )
        elif "label" in payload:
            if rows != 1:
                raise BadRequest(
                    422,
                    "wrong_type",
                    f"field 'label': the request had {rows} rows; send 'labels', one per row",
                )
            labels, field = [payload["label"]], "label"
        else:
            raise BadRequest(422, "missing_field", "field 'label': missing")
        model = answered.model
        indices = [self._index(model, value, field, i, rows) for i, value in enumerate(labels)]
        with self._lock:
            if self._pending.pop(request_id, None) is None:
                raise BadRequest(
                    404, "unknown_request", f"field 'request_id': {request_id[:64]!r} unknown"
                )
            window = self._windows.get(model.version)
            if window is None or window.model is not model:
                window = self._windows[model.version] = _VersionWindow(model, self.cfg.window)
            for scores, index in zip(answered.scores, indices, strict=True):
                window.scores.append(scores)
                window.labels.append(index)
        return {"request_id": request_id, "model_version": model.version, "rows": rows}

    @staticmethod
    def _index(model: LoadedModel, value: Any, field: str, i: int, rows: int) -> int:
        where = field if rows == 1 and field == "label" else f"{field}[{i}]"
        if model.labels is not None:  # multi-class: a class name of labels.json
            if isinstance(value, str) and value in model.labels:
                return model.labels.index(value)
            raise BadRequest(
                422,
                "wrong_label",
                f"field '{where}': {describe(value)} is not one of the model's classes "
                f"({', '.join(model.labels)})",
            )
        label_map = model.card.get("label_map") or {}
        names = {str(v): int(k) for k, v in label_map.items() if str(k) in ("0", "1")}
        if type(value) is int and value in (0, 1):
            return value
        if isinstance(value, str) and value in names:
            return names[value]
        expected = "0 or 1" + (f" (or {', '.join(sorted(names))})" if names else "")
        raise BadRequest(
            422, "wrong_label", f"field '{where}': {describe(value)}; expected {expected}"
        )

    def quality(self) -> dict[str, tuple[dict[str, float], int]]:
        """Online figures and labelled rows per version, for windows of at least min_labels
        rows holding what the figures need (both classes, for AUROC)."""
        with self._lock:
            windows = [
                (v, w.model, list(w.scores), list(w.labels)) for v, w in self._windows.items()
            ]
        out: dict[str, tuple[dict[str, float], int]] = {}
        for version, model, scores, labels in windows:
            if len(labels) < self.cfg.min_labels:
                out[version] = ({}, len(labels))
                continue
            y = np.asarray(labels, dtype=np.int64)
            p = np.stack(scores).astype(np.float32)
            out[version] = (_figures(model, y, p), len(labels))
        return out


def _figures(model: LoadedModel, y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    if model.labels is None:
        if len(np.unique(y)) < 2:
            return {}  # AUROC is undefined on one class
        return {
            "auroc": float(roc_auc_score(y, p)),
            "auprc": float(average_precision_score(y, p)),
        }
    predicted = p.argmax(axis=1)
    # as pipelines.multiclass: a class neither labelled nor predicted cannot be judged
    present = np.union1d(y, predicted)
    return {
        "accuracy": float(accuracy_score(y, predicted)),
        "macro_f1": float(f1_score(y, predicted, labels=present, average="macro")),
    }


class QualityCollector(Collector):
    """serve_online_quality{version,metric}, serve_online_labels{version} and the card's
    test figures serve_card_quality{version,metric} the alert compares them with."""

    def __init__(self, store: FeedbackStore, models: Any) -> None:
        self.store, self.models = store, models  # models(): the versions being served

    def collect(self) -> Iterator[Metric]:
        quality = GaugeMetricFamily(
            "serve_online_quality",
            "Quality on labelled feedback over the last serve.feedback.window rows per version "
            "(auroc, auprc for a binary model; accuracy, macro_f1 for a multi-class one)",
            labels=["version", "metric"],
        )
        labelled = GaugeMetricFamily(
            "serve_online_labels", "Labelled rows in the version's window", labels=["version"]
        )
        for version, (figures, rows) in self.store.quality().items():
            labelled.add_metric([version], rows)
            for name, value in figures.items():
                quality.add_metric([version, name], value)
        card = GaugeMetricFamily(
            "serve_card_quality",
            "The model card's test figures per served version (what online quality is held to)",
            labels=["version", "metric"],
        )
        for model in self.models():
            figures = model.card.get("test_metrics") or {}
            names = MULTICLASS_METRICS if model.labels is not None else BINARY_METRICS
            for name in names:
                if isinstance(figures.get(name), int | float):
                    card.add_metric([model.version, name], float(figures[name]))
        pending = GaugeMetricFamily(
            "serve_feedback_pending", "Answered requests waiting for their label"
        )
        pending.add_metric([], self.store.pending)
        yield from (quality, labelled, card, pending)
