"""The /predict answer body, whatever the modality: a binary model's `scores` (and `labels`
at the card's decision threshold), or for a multi-class model one prediction per row with
its label, that label's probability and the full class distribution, in the export folder's
scorer's own shape (pipelines.core.folder_scoring.labelled)."""

from __future__ import annotations

from typing import Any

import numpy as np

from pipelines.core.folder_scoring import labelled
from pipelines.serve.model import LoadedModel


def answer_body(model: LoadedModel, scores: np.ndarray, request_id: str) -> dict[str, Any]:
    answer: dict[str, Any] = {"request_id": request_id, "model_version": model.version}
    if model.labels is None:
        answer["scores"] = scores.tolist()
        threshold = model.decision_threshold
        if threshold is not None:
            answer["labels"] = (scores >= threshold).astype(int).tolist()
            answer["decision_threshold"] = threshold
        return answer
    predictions = labelled(scores, model.labels)
    for prediction in predictions:
        prediction["probability"] = prediction["probabilities"][prediction["label"]]
    answer["predictions"] = predictions
    return answer


def top_scores(scores: np.ndarray) -> np.ndarray:
    """What the score histogram records: a binary model's score, a multi-class model's top
    probability (its confidence)."""
    return scores if scores.ndim == 1 else scores.max(axis=1)
