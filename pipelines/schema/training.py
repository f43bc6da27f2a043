"""How a model is trained: strategy, trainer, train (optimiser, schedule, loss), logger and
callbacks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipelines.schema.fields import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, bounded


@dataclass
class StrategyConfig:
    """How training is distributed; conf/strategy/ holds one file per option."""

    name: str = "auto"
    process_group_backend: str | None = None
    find_unused_parameters: bool = False
    # a native DeepSpeed config (ZeRO stage, offload, buckets, bf16/fp16); deepspeed only
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def zero_stage(self) -> int | None:
        if self.name != "deepspeed":
            return None
        return int(self.config.get("zero_optimization", {}).get("stage", 0))

    @property
    def offloads_optimizer(self) -> bool:
        zero = self.config.get("zero_optimization", {}) if self.name == "deepspeed" else {}
        return zero.get("offload_optimizer", {}).get("device", "none") in ("cpu", "nvme")


@dataclass
class TrainerConfig:
    accelerator: str = "cpu"
    devices: int = bounded(1, **AT_LEAST_ONE)
    num_nodes: int = bounded(1, **AT_LEAST_ONE)
    max_epochs: int = bounded(4, **AT_LEAST_ONE)
    precision: str = "32-true"
    accumulate_grad_batches: int = bounded(1, **AT_LEAST_ONE)
    gradient_clip_val: float | None = bounded(1.0, **NON_NEGATIVE)
    deterministic: bool = True
    log_every_n_steps: int = bounded(20, **AT_LEAST_ONE)
    # a fraction of the epoch's batches, as Lightning reads a float
    limit_train_batches: float = bounded(1.0, gt=0.0, le=1.0)
    enable_progress_bar: bool = True
    # any other lightning.pytorch.Trainer argument (`+trainer.profiler=simple`), passed as is;
    # validate() moves such keys here after checking them (pipelines/lightning_options.py)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainConfig:
    # how many epochs is trainer.max_epochs: one key for one thing
    batch_size: int = bounded(512, **AT_LEAST_ONE)
    eval_batch_size: int = bounded(2048, **AT_LEAST_ONE)
    optimizer: str = "adamw"
    lr: float = bounded(3e-3, **POSITIVE)
    weight_decay: float = bounded(1e-4, **NON_NEGATIVE)
    warmup_ratio: float = bounded(0.05, ge=0.0, lt=1.0)
    scheduler: str = "cosine"
    loss: str = "bce"
    pos_weight: Any = None
    focal_gamma: float = bounded(2.0, **NON_NEGATIVE)
    num_workers: int = bounded(0, **NON_NEGATIVE)


@dataclass
class WandbConfig:
    enabled: bool = True
    mode: str = "offline"
    project: str = "moe-pipelines"
    group: str | None = None
    tags: list[str] = field(default_factory=list)
    dir: str = "outputs/wandb"


@dataclass
class LoggerConfig:
    csv: bool = True
    wandb: WandbConfig = field(default_factory=WandbConfig)


@dataclass
class EarlyStoppingConfig:
    enabled: bool = True
    monitor: str = "val/auprc"
    mode: str = "max"
    patience: int = bounded(3, **NON_NEGATIVE)


@dataclass
class CheckpointConfig:
    monitor: str = "val/auprc"
    mode: str = "max"
    # also write last.ckpt every N optimizer steps (0: at epoch ends only), so a kill loses
    # at most N steps
    every_n_train_steps: int = bounded(0, **NON_NEGATIVE)
    # rerunning the same config after a kill continues from last.ckpt
    resume: bool = True


@dataclass
class CallbacksConfig:
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    # more Lightning callbacks by name (`+callbacks.lr_monitor._target_=...`), each a node with
    # _target_ and arguments; validate() moves and checks them (pipelines/lightning_options.py)
    extra: dict[str, Any] = field(default_factory=dict)


CHOICES: dict[str, tuple[str, ...]] = {
    "strategy.name": ("auto", "ddp", "deepspeed"),
    "strategy.process_group_backend": ("gloo", "nccl", "mpi"),
    "trainer.accelerator": ("cpu", "gpu", "cuda", "auto"),
    "trainer.precision": ("32-true", "bf16-mixed", "16-mixed", "bf16-true"),
    "train.optimizer": ("adamw", "adam", "sgd"),
    "train.scheduler": ("cosine", "constant"),
    "train.loss": ("bce", "focal"),
    "logger.wandb.mode": ("auto", "offline", "online", "disabled"),
    "callbacks.early_stopping.mode": ("min", "max"),
    "callbacks.checkpoint.mode": ("min", "max"),
}
