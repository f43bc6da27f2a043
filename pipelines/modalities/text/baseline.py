"""The classical text baseline: TF-IDF over word uni- and bigrams into a multinomial logistic
regression, trained on the same train split as the Transformer, so a user sees what the MoE
earns for its cost. scikit-learn's own estimators, one Pipeline, nothing hand-written.

Settings are the usual strong defaults for short texts rather than a tuned search: sublinear
term frequency (a word said three times is not three times the evidence), min_df=2 (a word
seen once in train cannot generalise), and class_weight="balanced" so rare intents are not
sacrificed to the common ones, which is what macro-F1 measures.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline


def tfidf_logistic_regression(
    texts: Sequence[str], labels: np.ndarray, seed: int, max_features: int = 50_000
) -> Pipeline:
    """Fitted TF-IDF + logistic regression; `predict_proba` gives one column per class index
    0..k-1 present in `labels` (in sorted order, scikit-learn's convention)."""
    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=max_features),
        LogisticRegression(max_iter=2000, class_weight="balanced", random_state=seed),
    )
    return model.fit(list(texts), np.asarray(labels))


def class_probabilities(model: Pipeline, texts: Sequence[str], n_classes: int) -> np.ndarray:
    """(len(texts), n_classes) probabilities, a zero column for any class the train split
    lacked (scikit-learn only returns columns for the classes it saw)."""
    seen = model.classes_.astype(int)
    out = np.zeros((len(texts), n_classes), dtype=np.float64)
    out[:, seen] = model.predict_proba(list(texts))
    return out
