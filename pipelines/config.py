"""Structured configs: the schema that every composed config is validated against.

A typo in a key or a value of the wrong type fails here, before any stage does work, with a
message naming the key and what was expected (Ludwig-style).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pipelines.errors import PipelineError


@dataclass
class SourceConfig:
    kind: str = "simulator"
    rows: int | None = 100_000
    n_days: int = 90
    path: str | None = None
    format: str | None = None


@dataclass
class SchemaConfig:
    label: str = "label"
    positive_class: str = "1"
    time_column: str | None = None
    id_columns: list[str] = field(default_factory=list)
    # the entity whose history the sequence models read (e.g. customer_id)
    sequence_key: str | None = None
    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]


@dataclass
class SplitConfig:
    method: str = "stratified"
    val_fraction: float = 0.15
    test_fraction: float = 0.15


@dataclass
class GatesConfig:
    min_rows: int = 100
    max_missing_fraction: float = 0.2
    min_positive_fraction: float = 0.001
    max_positive_fraction: float = 0.9
    max_drift_psi: float = 1.0


@dataclass
class ProfileConfig:
    gates: GatesConfig = field(default_factory=GatesConfig)


@dataclass
class RangeRule:
    min: float | None = None
    max: float | None = None


@dataclass
class MissingConfig:
    numeric: str = "median"
    categorical: str = "most_frequent"


@dataclass
class OutlierConfig:
    enabled: bool = False
    contamination: float = 0.01
    keep_positive: bool = True


@dataclass
class CleanConfig:
    ranges: dict[str, RangeRule] = field(default_factory=dict)
    allowed_values: dict[str, list[str]] = field(default_factory=dict)
    missing: MissingConfig = field(default_factory=MissingConfig)
    drop_duplicates: bool = True
    outliers: OutlierConfig = field(default_factory=OutlierConfig)


@dataclass
class AugmentConfig:
    method: str = "none"
    sampling_strategy: float = 1.0
    k_neighbors: int = 5


@dataclass
class DataConfig:
    name: str = "data"
    source: SourceConfig = field(default_factory=SourceConfig)
    schema: SchemaConfig = field(default_factory=SchemaConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    clean: CleanConfig = field(default_factory=CleanConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)


MOE_MODELS = ("moe_mlp", "moe_transformer")
SEQUENCE_MODELS = ("moe_transformer", "dense_transformer", "bilstm_attention")


@dataclass
class ModelConfig:
    name: str = "moe_mlp"
    hidden_dim: int = 64
    num_blocks: int = 2
    ffn_dim: int = 128
    num_experts: int = 4
    top_k: int = 2
    capacity_factor: float = 1.25
    eval_capacity_factor: float = 2.0
    min_capacity: int = 4
    noisy_gate_policy: str | None = None
    second_expert_sampling: bool = True
    aux_loss_weight: float = 0.01
    dropout: float = 0.1
    # sequence models only: how many of the customer's transactions (the current one last)
    # one example holds, and the attention heads of the Transformer encoder
    seq_len: int = 16
    num_heads: int = 4

    @property
    def is_moe(self) -> bool:
        return self.name in MOE_MODELS

    @property
    def is_sequence(self) -> bool:
        return self.name in SEQUENCE_MODELS


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
    devices: int = 1
    num_nodes: int = 1
    max_epochs: int = 4
    precision: str = "32-true"
    accumulate_grad_batches: int = 1
    gradient_clip_val: float | None = 1.0
    deterministic: bool = True
    log_every_n_steps: int = 20
    limit_train_batches: float = 1.0
    enable_progress_bar: bool = True


@dataclass
class TrainConfig:
    max_epochs: int = 4
    batch_size: int = 512
    eval_batch_size: int = 2048
    optimizer: str = "adamw"
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup_ratio: float = 0.05
    scheduler: str = "cosine"
    loss: str = "bce"
    pos_weight: Any = None
    focal_gamma: float = 2.0
    num_workers: int = 0


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
    patience: int = 3


@dataclass
class CheckpointConfig:
    monitor: str = "val/auprc"
    mode: str = "max"
    # also write last.ckpt every N optimizer steps (0: at epoch ends only), so a kill loses
    # at most N steps
    every_n_train_steps: int = 0
    # rerunning the same config after a kill continues from last.ckpt
    resume: bool = True


@dataclass
class CallbacksConfig:
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)


@dataclass
class DynamicQuantConfig:
    enabled: bool = True
    per_channel: bool = False
    weight_type: str = "qint8"


@dataclass
class StaticQuantConfig:
    enabled: bool = True
    calibration_method: str = "minmax"
    calibration_rows: int = 2048
    per_channel: bool = False


@dataclass
class QuantizeConfig:
    opset: int = 17
    dynamic: DynamicQuantConfig = field(default_factory=DynamicQuantConfig)
    static: StaticQuantConfig = field(default_factory=StaticQuantConfig)


@dataclass
class EvaluateConfig:
    target_fpr: float = 0.01
    threshold: float = 0.5
    latency_batch_sizes: list[int] = field(default_factory=lambda: [1, 256])
    latency_repeats: int = 30
    threads: int = 2


@dataclass
class ExportConfig:
    variant: str = "fp32"
    parity_batch_sizes: list[int] = field(default_factory=lambda: [1, 7, 256])
    parity_atol: float = 1e-4
    quantized_atol: float = 0.05
    tensorrt: str = "auto"


@dataclass
class PipelineConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    callbacks: CallbacksConfig = field(default_factory=CallbacksConfig)
    quantize: QuantizeConfig = field(default_factory=QuantizeConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    seed: int = 42
    optimized_metric: str = "val/auprc"


CHOICES: dict[str, tuple[str, ...]] = {
    "data.source.kind": ("simulator", "file", "german_credit"),
    "data.source.format": ("csv", "parquet", "json"),
    "data.split.method": ("time", "stratified"),
    "data.clean.missing.numeric": ("median", "mean", "zero", "quarantine"),
    "data.clean.missing.categorical": ("most_frequent", "constant", "quarantine"),
    "data.augment.method": ("none", "smote", "random_over", "random_under", "smote_tomek"),
    "model.name": (
        "moe_mlp",
        "dense_mlp",
        "moe_transformer",
        "dense_transformer",
        "bilstm_attention",
    ),
    "model.noisy_gate_policy": ("RSample", "Jitter"),
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
    "quantize.dynamic.weight_type": ("qint8", "quint8"),
    "quantize.static.calibration_method": ("minmax", "entropy", "percentile"),
    "export.variant": ("fp32", "int8_dynamic", "int8_static"),
    "export.tensorrt": ("auto", "off"),
}


def _check_choices(cfg: DictConfig, source: str) -> None:
    for key, allowed in CHOICES.items():
        value = OmegaConf.select(cfg, key)
        if value is not None and value not in allowed:
            raise PipelineError(
                f"{source}: config key '{key}' = {value!r}: expected one of {', '.join(allowed)}"
            )


def _check_ranges(cfg: PipelineConfig, source: str) -> None:
    split = cfg.data.split
    if (
        not 0 < split.val_fraction < 1
        or not 0 < split.test_fraction < 1
        or (split.val_fraction + split.test_fraction >= 1)
    ):
        raise PipelineError(
            f"{source}: config keys 'data.split.val_fraction'/'test_fraction' must each be in "
            f"(0, 1) and sum below 1, got {split.val_fraction} and {split.test_fraction}"
        )
    if cfg.model.is_moe and (cfg.model.top_k != 2 or cfg.model.num_experts < 2):
        # DeepSpeed's top-1 gate asserts batch > min_capacity, which rules out batch-1 inference
        raise PipelineError(
            f"{source}: config keys 'model.top_k' = {cfg.model.top_k}, 'model.num_experts' = "
            f"{cfg.model.num_experts}: {cfg.model.name} expects top_k = 2 and at least 2 experts"
        )
    if cfg.strategy.zero_stage == 3 and cfg.model.is_moe:
        # measured: deepspeed 0.19 raises "Native DeepSpeed MoE is not supported with ZeRO
        # Stage 3" at engine start, after the data stages; fail before any work instead
        raise PipelineError(
            f"{source}: config key 'strategy' (ZeRO stage 3) with 'model.name' = "
            f"{cfg.model.name!r}: DeepSpeed's MoE layer supports ZeRO stage 1 or 2 only; "
            "expected strategy=deepspeed_zero1|deepspeed_zero2 or a dense model"
        )
    if cfg.model.is_sequence and not (cfg.data.schema.sequence_key and cfg.data.schema.time_column):
        raise PipelineError(
            f"{source}: config key 'data.schema.sequence_key' = {cfg.data.schema.sequence_key!r}, "
            f"'data.schema.time_column' = {cfg.data.schema.time_column!r}: model "
            f"{cfg.model.name!r} reads each entity's history, so both must name columns"
        )
    if cfg.train.pos_weight not in (None, "auto") and not isinstance(
        cfg.train.pos_weight, int | float
    ):
        raise PipelineError(
            f"{source}: config key 'train.pos_weight' = {cfg.train.pos_weight!r}: "
            "expected null, 'auto' or a number"
        )


def validate(cfg: DictConfig | dict, source: str = "config") -> PipelineConfig:
    """Merge `cfg` onto the schema; unknown keys, wrong types and bad choices fail here."""
    raw = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(cfg)
    raw = OmegaConf.masked_copy(raw, [k for k in raw if k != "hydra"])
    try:
        merged = OmegaConf.merge(OmegaConf.structured(PipelineConfig), raw)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "?"
        reason = str(err).splitlines()[0]
        raise PipelineError(f"{source}: config key '{key}': {reason}") from None
    _check_choices(merged, source)
    typed: PipelineConfig = OmegaConf.to_object(merged)  # type: ignore[assignment]
    _check_ranges(typed, source)
    return typed


def load_params(
    path: str | Path = "params.yaml", overrides: list[str] | None = None
) -> PipelineConfig:
    """Read the composed config DVC tracks (params.yaml), apply dotlist overrides, validate."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: params file not found (run `make params` to compose it)")
    try:
        cfg = OmegaConf.load(path)
        if overrides:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(overrides))
    except (OmegaConfBaseException, yaml.YAMLError) as err:
        reason = " ".join(str(err).split())
        raise PipelineError(f"{path}: not a valid params file: {reason}") from None
    return validate(cfg, source=str(path))


def to_container(section: Any) -> Any:
    """A plain dict/list view of a config dataclass, for JSON files and W&B."""
    return OmegaConf.to_container(OmegaConf.structured(section), resolve=True)
