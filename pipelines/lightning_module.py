"""The LightningModules: task loss + DeepSpeed's load-balancing loss, torchmetrics for
validation, AdamW with linear warmup and cosine decay.

MoEClassifierBase holds what every modality's classifier shares (the optimizer and its
expert parameter groups, the schedule, the MoE routing logs); RiskClassifier is the tabular
and transaction-history one (binary, AUROC/AUPRC), pipelines/modalities/text/lightning.py the text
one."""

from __future__ import annotations

import inspect
import math
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.classification import (
    BinaryAUROC,
    BinaryAveragePrecision,
    MulticlassAccuracy,
    MulticlassF1Score,
)

from pipelines.models.build import build_model
from pipelines.schema.model import ModelConfig
from pipelines.schema.training import TrainConfig


class MoEClassifierBase(L.LightningModule):
    """Subclasses set `self.model_cfg` and `self.train_cfg` in __init__; the trainer builder
    sets `total_steps` (the schedule's length, from the data) and `offload_optimizer` (whether
    ZeRO-Offload steps the optimizer on the CPU)."""

    model_cfg: ModelConfig
    train_cfg: TrainConfig

    def __init__(self) -> None:
        super().__init__()
        self.total_steps: int | None = None
        self.offload_optimizer = False

    def record_settings(self, model: dict[str, Any], train: dict[str, Any]) -> None:
        """Called first in a subclass's __init__: saves its constructor's arguments as the
        checkpoint's hyper-parameters (plain types only, so checkpoints load with
        torch.load(weights_only=True)) and reads the model and train sections they carry."""
        caller = inspect.currentframe()
        assert caller is not None and caller.f_back is not None
        self.save_hyperparameters(frame=caller.f_back)
        self.model_cfg = ModelConfig(**model)
        self.train_cfg = TrainConfig(**train)

    # the validation metrics, logged as val/<name> at each epoch's end, in this order
    val_metrics: nn.ModuleDict

    def model_inputs(self, x: Tensor) -> tuple[Tensor, ...]:
        """What the model's forward takes for a batch `x` (text: ids and their mask)."""
        return (x,)

    def training_batch(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """The batch a training step learns from (images: augmented on the fly, soft targets)."""
        return x, y

    def _task_loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        raise NotImplementedError

    def update_val_metrics(self, logits: Tensor, y: Tensor) -> None:
        for metric in self.val_metrics.values():
            metric.update(logits, y)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(*self.model_inputs(x))

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, targets = self.training_batch(*batch)
        logits, aux_loss, expert_counts = self.model.forward_with_aux(*self.model_inputs(x))
        task_loss = self._task_loss(logits, targets)
        loss = task_loss + self.model_cfg.aux_loss_weight * aux_loss
        self.log_training(loss, task_loss, aux_loss, expert_counts)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.log(
            "val/loss", self._task_loss(logits, y), prog_bar=True, on_epoch=True, sync_dist=True
        )
        self.update_val_metrics(logits, y)

    def on_validation_epoch_end(self) -> None:
        # compute() already gathers every rank's state, so syncing averages equal values
        for name, metric in self.val_metrics.items():
            self.log(f"val/{name}", metric.compute(), prog_bar=True, sync_dist=True)
            metric.reset()

    def log_training(
        self, loss: Tensor, task_loss: Tensor, aux_loss: Tensor, expert_counts: list[Tensor]
    ) -> None:
        # sync_dist: under DDP the epoch means cover every rank (Lightning ignores it when
        # training is not distributed)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, sync_dist=True)
        self.log("train/task_loss", task_loss, on_step=True, on_epoch=True, sync_dist=True)
        if expert_counts:
            self.log("train/aux_loss", aux_loss, on_step=True, on_epoch=True, sync_dist=True)
            for block, counts in enumerate(expert_counts):
                share = counts.float() / counts.sum().clamp_min(1)
                for expert, value in enumerate(share):
                    self.log(f"moe/block{block}_expert{expert}_share", value, on_step=True)

    def build_optimizer(self) -> torch.optim.Optimizer:
        cfg = self.train_cfg
        params = self._param_groups()
        if self.offload_optimizer and cfg.optimizer in ("adamw", "adam"):
            # ZeRO-Offload steps the optimizer on the CPU; DeepSpeed refuses torch's Adam there
            from deepspeed.ops.adam import DeepSpeedCPUAdam

            return DeepSpeedCPUAdam(
                params,
                lr=cfg.lr,
                weight_decay=cfg.weight_decay,
                adamw_mode=cfg.optimizer == "adamw",
            )
        if cfg.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        if cfg.optimizer == "adam":
            return torch.optim.Adam(params, lr=cfg.lr)
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)

    def configure_optimizers(self) -> dict[str, Any]:
        cfg = self.train_cfg
        optimizer = self.build_optimizer()
        total = max(self.total_steps or int(self.trainer.estimated_stepping_batches), 1)
        warmup = int(total * cfg.warmup_ratio)
        schedule = (
            warmup_cosine(warmup, total) if cfg.scheduler == "cosine" else warmup_constant(warmup)
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def _param_groups(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = [{"params": list(self.parameters()), "name": "params"}]
        if self.model_cfg.is_moe:
            # DeepSpeed's ZeRO reduces expert gradients over the expert-parallel group only if
            # expert parameters sit in their own optimizer groups; harmless without ZeRO
            from deepspeed.moe.utils import split_params_into_different_moe_groups_for_optimizer

            groups = list(split_params_into_different_moe_groups_for_optimizer(groups[0]))
        return groups


class RiskClassifier(MoEClassifierBase):
    def __init__(
        self,
        n_features: int,
        feature_names: list[str],
        feature_mean: list[float],
        feature_std: list[float],
        model: dict[str, Any],
        train: dict[str, Any],
        pos_weight: float | None = None,
    ) -> None:
        super().__init__()
        self.record_settings(model, train)
        self.model = build_model(n_features, self.model_cfg, feature_mean, feature_std)
        self.val_metrics = nn.ModuleDict(
            {"auroc": BinaryAUROC(), "auprc": BinaryAveragePrecision()}
        )

    def update_val_metrics(self, logits: Tensor, y: Tensor) -> None:
        probs, labels = torch.sigmoid(logits), y.long()
        for metric in self.val_metrics.values():
            metric.update(probs, labels)

    def _task_loss(self, logits: Tensor, y: Tensor) -> Tensor:
        weight = None
        if self.hparams.pos_weight is not None:
            weight = torch.tensor(float(self.hparams.pos_weight), device=logits.device)
        if self.train_cfg.loss == "focal":
            bce = F.binary_cross_entropy_with_logits(logits, y, reduction="none", pos_weight=weight)
            p_true = torch.exp(-bce)
            return ((1 - p_true) ** self.train_cfg.focal_gamma * bce).mean()
        return F.binary_cross_entropy_with_logits(logits, y, pos_weight=weight)


class MulticlassClassifierBase(MoEClassifierBase):
    """What the multi-class modules (text, images) share: class-weighted cross-entropy, and
    accuracy and macro-F1 (torchmetrics) on validation. Subclasses build `self.model` and may
    override `model_inputs`, `training_batch` and `_task_loss`."""

    def track_classes(self, n_classes: int) -> None:
        self.val_metrics = nn.ModuleDict(
            {
                "accuracy": MulticlassAccuracy(num_classes=n_classes, average="micro"),
                "macro_f1": MulticlassF1Score(num_classes=n_classes, average="macro"),
            }
        )

    def class_weight(self, logits: Tensor) -> Tensor | None:
        weights = self.hparams.class_weights
        return None if weights is None else torch.tensor(weights, device=logits.device)

    def _task_loss(self, logits: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(logits, y, weight=self.class_weight(logits))


def warmup_cosine(warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(warmup, 1)
        progress = (step - warmup) / max(total - warmup, 1)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def warmup_constant(warmup: int):
    return lambda step: min((step + 1) / max(warmup, 1), 1.0)


def multiclass_probabilities(
    module: MulticlassClassifierBase, inputs: np.ndarray, batch_size: int = 256
) -> np.ndarray:
    """Class probabilities (n, classes) of a multi-class module, in eval mode, batch by batch."""
    module.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(inputs), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(inputs[start : start + batch_size]))
            out.append(torch.softmax(module(batch), dim=-1).numpy())
    return np.concatenate(out) if out else np.zeros((0, len(module.hparams.class_names)))
