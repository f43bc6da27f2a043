"""The classical baselines the series models are measured against, fitted on the same train
windows: MiniRocket features with a ridge classifier (Dempster et al., KDD 2021: the field's
strong, fast baseline; aeon's MiniRocketClassifier), and the catch22 features (Lubba et al.,
DMKD 2019) of every channel with scikit-learn's histogram gradient-boosted trees. catch22 is
computed by pycatch22, its authors' C implementation: aeon's numba version compiles for
minutes at its first use in each process on a 2-core machine (measured: the evaluate stage
of the small test run spent ~3 min there)."""

from __future__ import annotations

from typing import Any

import numpy as np

BASELINES = ("minirocket_ridge", "catch22_boosted_trees")


def fit_baselines(x: np.ndarray, y: np.ndarray, seed: int) -> dict[str, Any]:
    """Each baseline fitted on raw float windows (n, channels, length) and labels."""
    from aeon.classification.convolution_based import MiniRocketClassifier
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    windows = x.astype(np.float64)
    minirocket = MiniRocketClassifier(random_state=seed).fit(windows, y)
    catch22 = make_pipeline(
        FunctionTransformer(catch22_features),
        # scikit-learn's default leaf of 20 rows cannot split an archive's 32-window train
        # split (BasicMotions: it predicted one class); a tenth of the rows, at most 20
        HistGradientBoostingClassifier(
            min_samples_leaf=int(np.clip(len(y) // 10, 1, 20)), random_state=seed
        ),
    ).fit(windows, y)
    return {"minirocket_ridge": minirocket, "catch22_boosted_trees": catch22}


def class_probabilities(model: Any, x: np.ndarray, n_classes: int) -> np.ndarray:
    """(n, n_classes) probabilities; a class absent from the train windows gets 0. The ridge
    classifier has no probabilities: aeon gives its prediction as a one-hot row."""
    p = np.asarray(model.predict_proba(x.astype(np.float64)), dtype=np.float64)
    out = np.zeros((len(x), n_classes))
    out[:, np.asarray(model.classes_, dtype=np.int64)] = p
    return out


def catch22_features(x: np.ndarray) -> np.ndarray:
    """The 22 catch22 features of each channel of each window (n, channels x 22); a feature
    a flat window leaves undefined (NaN) is left to the trees, which route missing values."""
    import pycatch22

    rows = [
        [v for channel in window for v in pycatch22.catch22_all(channel.tolist())["values"]]
        for window in np.asarray(x, dtype=np.float64)
    ]
    return np.asarray(rows, dtype=np.float64).reshape(len(x), -1)
