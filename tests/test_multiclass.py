"""Multi-class metrics (accuracy, macro-F1, per-class precision/recall, confusion matrix and its
PNG) and the TF-IDF + logistic regression text baseline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipelines.errors import PipelineError
from pipelines.modalities.text.baseline import class_probabilities, tfidf_logistic_regression
from pipelines.multiclass import confusion_png, multiclass_metrics

NAMES = ["billing", "card_lost", "refund"]


def one_hot(predicted: list[int], n: int = 3) -> np.ndarray:
    return np.eye(n)[predicted]


def test_metrics_count_what_a_hand_worked_example_says(tmp_path: Path) -> None:
    y = np.array([0, 0, 0, 1, 1, 2])
    predicted = [0, 0, 1, 1, 1, 0]
    m = multiclass_metrics(y, one_hot(predicted), NAMES)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
    billing = m["per_class"]["billing"]
    assert billing["precision"] == pytest.approx(2 / 3) and billing["recall"] == pytest.approx(
        2 / 3
    )
    assert m["per_class"]["card_lost"]["recall"] == 1.0
    assert m["per_class"]["refund"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    f1s = [2 / 3, 0.8, 0.0]
    assert m["macro_f1"] == pytest.approx(sum(f1s) / 3)
    assert m["absent_classes"] == []

    confusion_png(m, tmp_path / "confusion.png", "test")
    assert (tmp_path / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_class_that_is_neither_present_nor_predicted_is_left_out_of_the_macro_average() -> None:
    y = np.array([0, 1, 0, 1])
    m = multiclass_metrics(y, one_hot([0, 1, 0, 1]), NAMES)
    assert m["macro_f1"] == 1.0
    assert m["absent_classes"] == ["refund"]


def test_probabilities_of_the_wrong_shape_name_the_classes() -> None:
    with pytest.raises(PipelineError, match=r"expected \(4, 3\), one column per class"):
        multiclass_metrics(np.zeros(4, dtype=int), np.zeros((4, 2)), NAMES)


def test_the_tfidf_baseline_learns_words_and_keeps_a_column_for_an_unseen_class() -> None:
    texts = [
        "refund my money please",
        "money back refund now",
        "card lost yesterday",
        "i lost my card",
        "wrong bill amount",
        "bill is too high",
    ] * 5
    labels = np.array([2, 2, 1, 1, 0, 0] * 5)
    model = tfidf_logistic_regression(texts, labels, seed=0)
    probabilities = class_probabilities(model, ["please refund the money", "my card is lost"], 4)
    assert probabilities.shape == (2, 4)
    assert probabilities.argmax(axis=1).tolist() == [2, 1]
    assert (probabilities[:, 3] == 0).all()
    assert np.allclose(probabilities.sum(axis=1), 1.0)
