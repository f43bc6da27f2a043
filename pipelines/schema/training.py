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
    """`auto` (one process), `ddp`, or `deepspeed` (the ZeRO stage comes from `config`)."""
    process_group_backend: str | None = None
    """torch.distributed backend; null: gloo on CPU, NCCL on CUDA."""
    find_unused_parameters: bool = False
    """DDP's flag for models with parameters a step may not use."""
    config: dict[str, Any] = field(default_factory=dict)
    """A native DeepSpeed config (ZeRO stage, offload, buckets, bf16/fp16); deepspeed only."""
    timeout_s: float = bounded(1800.0, **POSITIVE)
    """Seconds a rank waits for the others (joining MASTER_ADDR:MASTER_PORT, and in each
    collective) before it fails with one line instead of hanging; ddp and deepspeed."""

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
    """Lightning's accelerator (`trainer=gpu` sets `gpu`)."""
    devices: int = bounded(1, **AT_LEAST_ONE)
    """Processes (devices) per node."""
    num_nodes: int = bounded(1, **AT_LEAST_ONE)
    """Nodes; world size is devices x num_nodes."""
    max_epochs: int = bounded(4, **AT_LEAST_ONE)
    """Training epochs (early stopping may end sooner)."""
    precision: str = "32-true"
    """Lightning precision; `16-mixed` needs CUDA."""
    accumulate_grad_batches: int = bounded(1, **AT_LEAST_ONE)
    """Batches whose gradients are summed per optimizer step."""
    gradient_clip_val: float | None = bounded(1.0, **NON_NEGATIVE)
    """Gradient norm clipping; null: none."""
    deterministic: bool = True
    """Use deterministic kernels (same seed, same result)."""
    log_every_n_steps: int = bounded(20, **AT_LEAST_ONE)
    """How often (in steps) per-step metrics are logged; at most the training batches of one
    epoch, which a small dataset's run uses instead (so each epoch logs)."""
    limit_train_batches: float = bounded(1.0, gt=0.0, le=1.0)
    """A fraction of the epoch's batches, as Lightning reads a float."""
    enable_progress_bar: bool = True
    """Show Lightning's progress bar."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Any other lightning.pytorch.Trainer argument (`+trainer.profiler=simple`), passed as is;
    validate() moves such keys here after checking them (pipelines/lightning_options.py)"""


@dataclass
class TrainConfig:
    batch_size: int = bounded(512, **AT_LEAST_ONE)
    """Training batch size (per process). How many epochs is trainer.max_epochs: one key for one
    thing."""
    eval_batch_size: int = bounded(2048, **AT_LEAST_ONE)
    """Batch size of validation and of the stages' scoring."""
    optimizer: str = "adamw"
    """The optimizer (expert parameters go into their own groups)."""
    lr: float = bounded(3e-3, **POSITIVE)
    """Peak learning rate."""
    weight_decay: float = bounded(1e-4, **NON_NEGATIVE)
    """Weight decay (AdamW: decoupled)."""
    warmup_ratio: float = bounded(0.05, ge=0.0, lt=1.0)
    """Share of the optimizer steps spent warming the learning rate up linearly."""
    scheduler: str = "cosine"
    """Learning rate after warm-up: cosine decay or constant."""
    loss: str = "bce"
    """Binary cross-entropy or focal loss (tables); multi-class models use cross-entropy."""
    pos_weight: Any = None
    """Weight of the positive class: null (none), `auto` (balanced from the train split) or a number
    > 0."""
    focal_gamma: float = bounded(2.0, **NON_NEGATIVE)
    """Focusing parameter of the focal loss."""
    num_workers: int = bounded(0, **NON_NEGATIVE)
    """DataLoader worker processes (0: in the training process)."""


@dataclass
class WandbConfig:
    enabled: bool = True
    """Log to Weights & Biases."""
    mode: str = "offline"
    """`auto`: online when WANDB_API_KEY is set, else offline; or force a mode."""
    project: str = "moe-pipelines"
    """W&B project."""
    group: str | None = None
    """W&B group (a sweep sets it to the study)."""
    tags: list[str] = field(default_factory=list)
    """W&B tags."""
    dir: str = "outputs/wandb"
    """Where W&B writes its run folders (relative paths from the repository, also for queued DVC
    experiments)."""


@dataclass
class LoggerConfig:
    csv: bool = True
    """Write Lightning's CSV log."""
    wandb: WandbConfig = field(default_factory=WandbConfig)
    """Weights & Biases: offline without an API key, online with one."""


@dataclass
class EarlyStoppingConfig:
    enabled: bool = True
    """Stop training when `monitor` stops improving."""
    monitor: str = "val/auprc"
    """The validation metric watched."""
    mode: str = "max"
    """Whether larger (`max`) or smaller (`min`) is better."""
    patience: int = bounded(3, **NON_NEGATIVE)
    """Epochs without improvement before stopping."""


@dataclass
class CheckpointConfig:
    monitor: str = "val/auprc"
    """The validation metric that picks the best epoch's weights (shipped as models/model.ckpt)."""
    mode: str = "max"
    """Whether larger (`max`) or smaller (`min`) is better."""
    every_n_train_steps: int = bounded(0, **NON_NEGATIVE)
    """Also write last.ckpt every N optimizer steps (0: at epoch ends only), so a kill loses at most
    N steps."""
    resume: bool = True
    """Rerunning the same config after a kill continues from last.ckpt."""


@dataclass
class CallbacksConfig:
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    """Lightning's EarlyStopping."""
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    """Which epoch's weights ship, and the resumable checkpoints."""
    extra: dict[str, Any] = field(default_factory=dict)
    """More Lightning callbacks by name (`+callbacks.lr_monitor._target_=...`), each a node with
    _target_ and arguments; validate() moves and checks them (pipelines/lightning_options.py)"""


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
