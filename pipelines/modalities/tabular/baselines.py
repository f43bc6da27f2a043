"""Classical baselines for the variants table: what the model earns for its cost.

Each is a scikit-learn estimator trained on the model's own train split and features. Sequence
models read (rows, seq_len, features + 1) histories; a baseline reads each history's current
transaction (the last position, its padding flag dropped), i.e. the same rows and the same raw
features the row models read.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from pipelines.selection import BASELINE_PREFIX

# variant names in the evaluate report: prefixed, so a reader never mistakes one for a model
PREFIX = BASELINE_PREFIX


def flat_features(x: np.ndarray) -> np.ndarray:
    """The row features: a feature matrix as is; of a history, its current (last) row
    without the padding flag."""
    return x[:, -1, :-1] if x.ndim == 3 else x


def build(name: str, seed: int) -> Pipeline:
    if name == "logistic_regression":
        # the model standardises inside its graph; a linear model needs it as much
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=seed))
    if name == "hist_gradient_boosting":
        # early stopping on a seeded 10% of train, scikit-learn's default above 10k rows
        return make_pipeline(HistGradientBoostingClassifier(random_state=seed))
    raise ValueError(f"unknown baseline {name!r}")


def fit(name: str, x: np.ndarray, y: np.ndarray, seed: int, threads: int) -> Pipeline:
    with threadpool_limits(threads):
        return build(name, seed).fit(flat_features(x), y.astype(np.int64))


def predictor(model: Pipeline) -> Callable[[np.ndarray], np.ndarray]:
    """batch (the model's input shape) -> probability of the positive class, float32. Thread
    limits are the caller's (threadpoolctl's limits cost ~3 ms a call: measured, they
    dominated batch-1 latency when set per call)."""

    def predict(batch: np.ndarray) -> np.ndarray:
        return model.predict_proba(flat_features(batch))[:, 1].astype(np.float32)

    return predict
