"""The decision threshold: chosen on the validation split by a declared rule, then applied
unchanged to test and shipped in the model card. A fixed 0.5 is meaningless on imbalanced
data (a 6%-positive table scores F1 = 0 at 0.5 with a good ranking)."""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.functional.classification import binary_precision_recall_curve, binary_roc

from pipelines.errors import PipelineError
from pipelines.schema.evaluation import ThresholdConfig


def choose_threshold(y: np.ndarray, p: np.ndarray, rule: ThresholdConfig) -> float:
    """The threshold `rule` picks on (labels `y`, scores `p`); a score >= it is positive.
    Scores are probabilities: anything non-finite or outside [0, 1] is a ValueError."""
    check_scores(p)
    if rule.rule == "fixed":
        return float(rule.fixed)
    if len(np.unique(y)) < 2:
        raise PipelineError(
            f"evaluate.threshold.rule = {rule.rule!r} needs both classes in the validation "
            f"split, found only {int(y[0]) if len(y) else 'no rows'}; use rule=fixed"
        )
    probs = torch.from_numpy(p.astype(np.float32))
    target = torch.from_numpy(y.astype(np.int64))
    if rule.rule == "max_f1":
        precision, recall, thresholds = binary_precision_recall_curve(probs, target)
        # the curve's last point (recall 0) has no threshold
        precision, recall = precision[:-1], recall[:-1]
        f1 = 2 * precision * recall / (precision + recall).clamp_min(1e-12)
        return float(thresholds[int(torch.argmax(f1))])
    fpr, tpr, thresholds = binary_roc(probs, target)
    if rule.rule == "target_fpr":
        within = torch.nonzero(fpr <= rule.target_fpr).flatten()
        best = within[torch.argmax(tpr[within])]
        return _roc_threshold(thresholds, int(best))
    positives, negatives = float(target.sum()), float(len(target) - target.sum())
    cost = (
        rule.cost_false_positive * fpr * negatives
        + rule.cost_false_negative * (1 - tpr) * positives
    )
    return _roc_threshold(thresholds, int(torch.argmin(cost)))


def check_scores(p: np.ndarray) -> None:
    """Scores must be finite probabilities: a NaN compares false with every threshold and a
    logit passed by mistake would still yield a threshold, silently meaningless."""
    p = np.asarray(p)
    bad = ~np.isfinite(p) | (p < 0) | (p > 1)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"scores must be finite probabilities in [0, 1]: {int(bad.sum())} of {p.size} "
            f"are not (first: {p.flat[first]!r} at index {first})"
        )


def _roc_threshold(thresholds: torch.Tensor, index: int) -> float:
    """The threshold of the ROC point at `index`, as a decision rule `score >= threshold`.

    torchmetrics' binary_roc (checked on 1.9) starts the curve at (fpr 0, tpr 0) by prepending a
    threshold of exactly 1.0; sklearn's roc_curve puts inf there (since 1.3; max score + 1
    before). That point means "nothing positive", which `score >= 1.0` is not when a score is
    exactly 1.0, as a float32 sigmoid is for any logit above ~17. So for that point the
    threshold is the next float32 above 1.0, which no probability reaches (the next float64
    would round back to 1.0 when compared with float32 scores)."""
    if index == 0:
        return float(np.nextafter(np.float32(1.0), np.float32(2.0)))
    return float(thresholds[index])
