"""The short Lightning fit every compression method ends with: a few epochs at a reduced
learning rate, single process, no checkpoints or loggers (the quantize stage that runs it is
short, and DVC reruns it whole), the model with the best validation AUPRC kept."""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from pipelines.datamodule import TabularDataModule
from pipelines.lightning_module import RiskClassifier
from pipelines.progress import epoch_line
from pipelines.training import _lightning_noise_silenced, epoch_metrics

if TYPE_CHECKING:
    from pipelines.config import PipelineConfig


class _BestWeights(Callback):
    """Keeps an in-memory copy of the weights at the best val/auprc epoch (what the train
    stage's ModelCheckpoint does on disk)."""

    def __init__(self) -> None:
        self.best_score = float("-inf")
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_epoch: int | None = None

    # on_validation_end, not on_validation_epoch_end: Lightning runs callbacks' epoch-end hooks
    # before the module's, which is where val/auprc is logged
    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        score = float(trainer.callback_metrics.get("val/auprc", float("nan")))
        if score > self.best_score:
            self.best_score = score
            self.best_state = copy.deepcopy(module.state_dict())
            # -1: the starting weights (validated before the fit)
            self.best_epoch = trainer.current_epoch if trainer.state.fn == "fit" else -1


class _EpochLines(Callback):
    """One line per epoch, as training prints off a terminal: a fine-tune has no progress bar
    (it is one step of the quantize stage's), and on a busy machine its epochs take minutes."""

    def __init__(self, label: str, epochs: int) -> None:
        self.label, self.epochs = label, epochs
        self.started = time.perf_counter()

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.started = time.perf_counter()

    # runs after the epoch's validation loop: the val metrics are this epoch's
    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        line = epoch_line(
            trainer.current_epoch + 1,  # counted from 1 of `epochs`: "epoch 3/3" is the last
            epoch_metrics(trainer),
            label=self.label,
            epochs=self.epochs,
            seconds=time.perf_counter() - self.started,
        )
        print(line, flush=True)


@dataclass(frozen=True)
class FineTuning:
    """What every compression fine-tune takes from the run: each method trains at a share (its
    lr_factor) of the run's learning rate, with its seed, on the trainer's device and with
    the trainer's gradient clipping."""

    lr: float
    seed: int
    accelerator: str = "cpu"
    gradient_clip_val: float | None = 1.0

    @classmethod
    def from_config(cls, cfg: PipelineConfig) -> FineTuning:
        return cls(
            lr=cfg.train.lr,
            seed=cfg.seed,
            accelerator=cfg.trainer.accelerator,
            gradient_clip_val=cfg.trainer.gradient_clip_val,
        )

    def scaled(self, lr_factor: float) -> FineTuning:
        """These settings at `lr_factor` times the learning rate."""
        return dataclasses.replace(self, lr=self.lr * lr_factor)


def fine_tune(
    module: RiskClassifier,
    dm: TabularDataModule,
    tuning: FineTuning,
    *,
    epochs: int,
    label: str = "fine-tune",
    keep_start_if_best: bool = True,
) -> tuple[RiskClassifier, dict[str, Any]]:
    """Fits `module` in place for `epochs` at the constant `tuning.lr` (no warmup: the
    weights are trained already) and returns it with its best-epoch weights and the fit's
    summary.

    With `keep_start_if_best`, the starting weights are validated first and are a candidate
    like any epoch (early stopping at epoch 0): a model that already overfits its train split
    comes back no worse on validation than it went in. QAT passes False: its starting point
    has uncalibrated fake-quant observers and is not a model to ship. Each epoch prints a
    line starting with `label` (`quantize: distillation: epoch 1/3: ...`), counted from 1."""
    lr = tuning.lr
    module.train_cfg = dataclasses.replace(
        module.train_cfg, lr=lr, warmup_ratio=0.0, scheduler="constant"
    )
    module.total_steps = None
    # Lightning fits a module in the mode it finds it; a loaded checkpoint is in eval mode
    # (no dropout, DeepSpeed's inference routing)
    module.train()
    best = _BestWeights()
    with _lightning_noise_silenced(single_process=True), _lightning_info_hidden():
        L.seed_everything(tuning.seed, workers=True)
        trainer = L.Trainer(
            accelerator=tuning.accelerator,
            devices=1,
            max_epochs=epochs,
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            enable_progress_bar=False,
            deterministic=True,
            use_distributed_sampler=False,
            gradient_clip_val=tuning.gradient_clip_val,
            callbacks=[best, _EpochLines(f"quantize: {label}", epochs)],
            num_sanity_val_steps=0,
        )
        if keep_start_if_best:
            trainer.validate(module, datamodule=dm, verbose=False)
            start_score = best.best_score
            module.train()  # validate() leaves it in eval mode
        trainer.fit(module, datamodule=dm)
    kept_start = keep_start_if_best and best.best_epoch == -1
    if best.best_state is not None:
        module.load_state_dict(best.best_state)
    info = {
        "epochs": epochs,
        "lr": lr,
        "best_val_auprc": best.best_score,
        "best_epoch": best.best_epoch,
    }
    if keep_start_if_best:
        info |= {"start_val_auprc": start_score, "kept_start": kept_start}
    return module.eval(), info


@contextmanager
def _lightning_info_hidden() -> Iterator[None]:
    """A fine-tune is one step of a stage: Lightning's banner (devices found, tips, "fit
    stopped") for each would bury the stage's own lines."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
