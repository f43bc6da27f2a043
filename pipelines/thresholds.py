"""The decision threshold: chosen on the validation split by a declared rule, then applied
unchanged to test and shipped in the model card. A fixed 0.5 is meaningless on imbalanced
data (a 6%-positive table scores F1 = 0 at 0.5 with a good ranking)."""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.functional.classification import binary_precision_recall_curve, binary_roc

from pipelines.config import ThresholdConfig
from pipelines.errors import PipelineError


def choose_threshold(y: np.ndarray, p: np.ndarray, rule: ThresholdConfig) -> float:
    """The threshold `rule` picks on (labels `y`, scores `p`); a score >= it is positive."""
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
    # binary_roc's first threshold is above every score (predict nothing positive)
    if rule.rule == "target_fpr":
        within = torch.nonzero(fpr <= rule.target_fpr).flatten()
        best = within[torch.argmax(tpr[within])]
        return float(min(thresholds[best].item(), 1.0))
    positives, negatives = float(target.sum()), float(len(target) - target.sum())
    cost = rule.cost_false_positive * fpr * negatives + rule.cost_false_negative * (
        1 - tpr
    ) * positives
    return float(min(thresholds[int(torch.argmin(cost))].item(), 1.0))
