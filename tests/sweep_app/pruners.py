"""A deterministic pruner for tests: prunes the listed trial numbers at their first report."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial


class PruneTrials(optuna.pruners.BasePruner):
    def __init__(self, numbers: list[int]) -> None:
        self.numbers = set(numbers)

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        return trial.number in self.numbers
