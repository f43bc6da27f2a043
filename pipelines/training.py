"""Builds the Lightning Trainer from config, fits, and writes a weights-only checkpoint."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger, Logger

from pipelines.config import PipelineConfig, to_container
from pipelines.datamodule import TabularDataModule
from pipelines.lightning_module import RiskClassifier

CHECKPOINT_FORMAT = "moe-pipelines/checkpoint-v1"


@dataclass
class FitResult:
    module: RiskClassifier
    best_score: float
    epochs_run: int
    history: list[dict[str, float]]


class EpochHistory(Callback):
    """Epoch-level metrics in memory, for the DVC plot of the training curves."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        # runs after the epoch's validation loop, so val metrics are this epoch's
        metrics = trainer.callback_metrics
        row = {"epoch": float(trainer.current_epoch), "step": float(trainer.global_step)}
        for key in ("train/loss_epoch", "val/loss", "val/auroc", "val/auprc"):
            if key in metrics:
                row[key.replace("/", "_")] = float(metrics[key])
        self.rows.append(row)


def fit_classifier(
    cfg: PipelineConfig, dm: TabularDataModule, work_dir: Path, run_name: str = "train"
) -> FitResult:
    L.seed_everything(cfg.seed, workers=True)
    x_train, y_train = dm.train_xy
    pos_weight = _pos_weight(cfg.train.pos_weight, y_train)
    module = RiskClassifier(
        n_features=x_train.shape[1],
        feature_names=list(dm.features),
        feature_mean=[float(v) for v in x_train.mean(axis=0)],
        feature_std=[float(v) for v in x_train.std(axis=0)],
        model=to_container(cfg.model),
        train=to_container(cfg.train),
        pos_weight=pos_weight,
    )
    checkpoint = ModelCheckpoint(
        dirpath=work_dir / "checkpoints",
        filename="best",
        monitor=cfg.callbacks.checkpoint.monitor,
        mode=cfg.callbacks.checkpoint.mode,
        save_last=True,
    )
    history = EpochHistory()
    callbacks: list[Callback] = [checkpoint, history, TQDMProgressBar(refresh_rate=20)]
    stopping = cfg.callbacks.early_stopping
    if stopping.enabled:
        callbacks.append(
            EarlyStopping(monitor=stopping.monitor, mode=stopping.mode, patience=stopping.patience)
        )
    t = cfg.trainer
    trainer = L.Trainer(
        accelerator=t.accelerator,
        devices=t.devices,
        precision=t.precision,
        max_epochs=cfg.train.max_epochs,
        accumulate_grad_batches=t.accumulate_grad_batches,
        gradient_clip_val=t.gradient_clip_val,
        deterministic=t.deterministic,
        log_every_n_steps=t.log_every_n_steps,
        limit_train_batches=t.limit_train_batches,
        enable_progress_bar=t.enable_progress_bar,
        default_root_dir=work_dir,
        logger=build_loggers(cfg, work_dir, run_name),
        callbacks=callbacks,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=dm)
    if checkpoint.best_model_path:
        best = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)
        module.load_state_dict(best["state_dict"])
    best_score = checkpoint.best_model_score
    for logger in trainer.loggers:
        logger.finalize("success")
    _finish_wandb()
    return FitResult(
        module=module.eval(),
        best_score=float(best_score) if best_score is not None else float("nan"),
        epochs_run=trainer.current_epoch,
        history=history.rows,
    )


def _pos_weight(setting: Any, y_train) -> float | None:
    if setting is None:
        return None
    if setting == "auto":
        positives = float(y_train.sum())
        return float((len(y_train) - positives) / max(positives, 1.0))
    return float(setting)


def build_loggers(cfg: PipelineConfig, work_dir: Path, run_name: str) -> list[Logger]:
    loggers: list[Logger] = []
    if cfg.logger.csv:
        loggers.append(CSVLogger(save_dir=work_dir, name="csv", version=0))
    wb = cfg.logger.wandb
    if wb.enabled and wb.mode != "disabled":
        from lightning.pytorch.loggers import WandbLogger

        Path(wb.dir).mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("WANDB_SILENT", "true")
        loggers.append(
            WandbLogger(
                project=wb.project,
                name=run_name,
                group=wb.group,
                tags=list(wb.tags),
                mode=wb.mode,
                save_dir=wb.dir,
                # the resolved config holds no secret: the API key only ever comes from the env
                config=to_container(cfg),
                log_model=False,
            )
        )
    return loggers


def _finish_wandb() -> None:
    import sys

    if "wandb" in sys.modules:
        import wandb

        if wandb.run is not None:
            wandb.finish()


def save_checkpoint(module: RiskClassifier, path: Path, extra: dict[str, Any]) -> None:
    """Weights and plain hyperparameters only: loadable with torch.load(weights_only=True)."""
    torch.save(
        {
            "format": CHECKPOINT_FORMAT,
            "hyper_parameters": dict(module.hparams),
            "state_dict": module.state_dict(),
            **extra,
        },
        path,
    )


def load_checkpoint(path: Path) -> RiskClassifier:
    from pipelines.errors import PipelineError

    if not path.is_file():
        raise PipelineError(f"{path}: missing model checkpoint (run the train stage first)")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("format") != CHECKPOINT_FORMAT:
        raise PipelineError(f"{path}: not a checkpoint written by the train stage")
    module = RiskClassifier(**payload["hyper_parameters"])
    module.load_state_dict(payload["state_dict"])
    return module.eval()
