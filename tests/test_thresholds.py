"""The decision threshold rules: a threshold means `score >= threshold` is positive, on
scores that are probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.schema.evaluation import ThresholdConfig
from pipelines.thresholds import choose_threshold

RULES = ["max_f1", "target_fpr", "min_cost", "fixed"]


def labelled_scores() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = (rng.random(500) < 0.1).astype(np.int64)
    return y, np.clip(0.1 + 0.6 * y * rng.random(500) + 0.3 * rng.random(500), 0, 1)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, -0.01, 1.5, 7.3])
def test_scores_that_are_not_finite_probabilities_are_rejected(rule: str, bad: float) -> None:
    y, p = labelled_scores()
    p[17] = bad
    with pytest.raises(ValueError, match=r"finite probabilities in \[0, 1\]: 1 of 500 .* index 17"):
        choose_threshold(y, p, ThresholdConfig(rule=rule))


@pytest.mark.parametrize("rule", RULES)
def test_scores_at_zero_and_one_are_probabilities(rule: str) -> None:
    y, p = labelled_scores()
    p[:2] = [0.0, 1.0]
    assert 0 < choose_threshold(y, p, ThresholdConfig(rule=rule)) <= 1


def saturated_negative() -> tuple[np.ndarray, np.ndarray]:
    """A negative with a score of exactly 1.0 (a float32 sigmoid of a logit above ~17) ranked
    above every positive."""
    y = np.array([0] * 100 + [1] * 10)
    p = np.concatenate([[1.0], np.linspace(0.05, 0.5, 99), np.linspace(0.6, 0.9, 10)])
    return y, p.astype(np.float32)  # as the models score


def test_target_fpr_keeps_its_bound_when_a_negative_scores_exactly_one() -> None:
    y, p = saturated_negative()
    # one false positive is already FPR 0.01: only "nothing positive" is within 0.005
    threshold = choose_threshold(y, p, ThresholdConfig(rule="target_fpr", target_fpr=0.005))
    assert not (p >= threshold).any()
    assert threshold > 1.0  # above every probability, the point the ROC curve starts at


def test_min_cost_predicting_nothing_positive_flags_no_row_at_all() -> None:
    y, p = saturated_negative()
    rule = ThresholdConfig(rule="min_cost", cost_false_positive=100.0, cost_false_negative=1.0)
    assert not (p >= choose_threshold(y, p, rule)).any()


def test_an_ordinary_roc_point_keeps_its_own_score_as_the_threshold() -> None:
    y, p = saturated_negative()
    threshold = choose_threshold(y, p, ThresholdConfig(rule="target_fpr", target_fpr=0.01))
    # FPR 0.01 admits the saturated negative; the best recall then takes every positive
    assert threshold == pytest.approx(0.6)
    assert np.mean(p[y == 0] >= threshold) <= 0.01 and (p[y == 1] >= threshold).all()
