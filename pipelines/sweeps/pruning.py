"""Optuna pruning from the Lightning validation loop, across the sweeper/job process boundary.

The sweeper hands the trial's identity to the job (hydra_plugins.moe_optuna_sweeper.trial);
this callback reports the monitored validation metric after every validation epoch and lets
`optuna.TrialPruned` propagate out of `trainer.fit`, out of train.py, to the sweeper, which
records the trial as PRUNED. Outside a sweep no callback is added.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import Callback

from hydra_plugins.moe_optuna_sweeper import trial as sweep_trial
from pipelines.config import PipelineConfig


class OptunaPruning(Callback):
    """Report `monitor` at each validation epoch end (step = epoch); prune when told to."""

    def __init__(self, monitor: str) -> None:
        self.monitor = monitor

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking:  # the sanity check's metric is from an untrained model
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        # raises optuna.TrialPruned (-> PRUNED) or FloatingPointError on NaN (-> FAIL)
        sweep_trial.report(float(value), trainer.current_epoch)


def pruning_callback(cfg: PipelineConfig) -> Callback | None:
    """The pruning callback for a sweep trial, None outside a sweep.

    Reports the sweep's objective when it is a validation metric (`val/auprc`), else the
    checkpoint monitor: a `test/...` objective only exists after evaluate."""
    if sweep_trial.context() is None:
        return None
    metric = cfg.optimized_metric
    return OptunaPruning(metric if metric.startswith("val/") else cfg.callbacks.checkpoint.monitor)
