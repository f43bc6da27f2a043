"""Structured configs: the schema that every composed config is validated against.

A typo in a key or a value of the wrong type fails here, before any stage does work, with a
message naming the key and what was expected (Ludwig-style).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pipelines.errors import PipelineError
from pipelines.modalities.image.config import ImageDataConfig
from pipelines.modalities.registry import modality
from pipelines.modalities.text.rules_config import (
    TextAugmentConfig,
    TextCleanConfig,
    TextGatesConfig,
    TokenizerConfig,
)


@dataclass(frozen=True)
class Bounds:
    """The valid range of a numeric key; checked with the schema, before any stage works."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def admits(self, value: float) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return True  # a type error is OmegaConf's to report
        return (
            math.isfinite(value)
            and (self.ge is None or value >= self.ge)
            and (self.gt is None or value > self.gt)
            and (self.le is None or value <= self.le)
            and (self.lt is None or value < self.lt)
        )

    def describe(self) -> str:
        parts = [
            f"{op} {bound:g}"
            for op, bound in ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
            if bound is not None
        ]
        return "a number " + " and ".join(parts)


def bounded(default: Any = dataclasses.MISSING, *, factory: Any = None, **bounds: float) -> Any:
    """A dataclass field with a valid range (for a list: of each item)."""
    metadata = {"bounds": Bounds(**bounds)}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


FRACTION = {"ge": 0.0, "le": 1.0}
POSITIVE = {"gt": 0.0}
AT_LEAST_ONE = {"ge": 1}
NON_NEGATIVE = {"ge": 0}


@dataclass
class SourceConfig:
    kind: str = "simulator"
    rows: int | None = bounded(100_000, **AT_LEAST_ONE)
    n_days: int = bounded(90, **AT_LEAST_ONE)
    # kind=file: the file (read by the `datasets` builder for `format`, else its suffix);
    # kind=hub: the Hugging Face hub dataset id (owner/name), all its splits concatenated
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
    # data.modality=text: the column holding the text (renamed `text` after ingest)
    text: str | None = None
    # data.modality=image: the column holding the images (renamed `image` after ingest)
    image: str | None = None

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]


@dataclass
class SplitConfig:
    method: str = "stratified"
    val_fraction: float = bounded(0.15, gt=0.0, lt=1.0)
    test_fraction: float = bounded(0.15, gt=0.0, lt=1.0)


@dataclass
class GatesConfig:
    min_rows: int = bounded(100, **NON_NEGATIVE)
    max_missing_fraction: float = bounded(0.2, **FRACTION)
    min_positive_fraction: float = bounded(0.001, **FRACTION)
    max_positive_fraction: float = bounded(0.9, **FRACTION)
    # rows without a label are quarantined by clean; more than this many is a broken file
    max_missing_label_fraction: float = bounded(0.05, **FRACTION)
    max_drift_psi: float = bounded(1.0, **NON_NEGATIVE)


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
    # IsolationForest's own range
    contamination: float = bounded(0.01, gt=0.0, le=0.5)
    keep_positive: bool = True


@dataclass
class CleanConfig:
    ranges: dict[str, RangeRule] = field(default_factory=dict)
    allowed_values: dict[str, list[str]] = field(default_factory=dict)
    missing: MissingConfig = field(default_factory=MissingConfig)
    drop_duplicates: bool = True
    outliers: OutlierConfig = field(default_factory=OutlierConfig)
    # a user's own row rules, each {_target_: module.Class, name: ..., <its arguments>}; run
    # after the built-in row rules (contract: pipelines/modalities/tabular/cleaning.py)
    rules: list[Any] = field(default_factory=list)


@dataclass
class AugmentConfig:
    method: str = "none"
    # minority/majority ratio after resampling, as imbalanced-learn reads a float
    sampling_strategy: float = bounded(1.0, gt=0.0, le=1.0)
    k_neighbors: int = bounded(5, **AT_LEAST_ONE)


@dataclass
class TextProfileConfig:
    gates: TextGatesConfig = field(default_factory=TextGatesConfig)
    # langdetect takes about 6 ms a text: the language mix is estimated on a seeded sample
    # of this many rows per split (the report says how many it read)
    language_sample: int = bounded(2000, **AT_LEAST_ONE)


@dataclass
class TextDataConfig:
    """The text modality's settings (data.modality=text, conf/data/customer_service.yaml): the
    same stages run them in place of the tabular sections data.profile/clean/augment."""

    profile: TextProfileConfig = field(default_factory=TextProfileConfig)
    clean: TextCleanConfig = field(default_factory=TextCleanConfig)
    augment: TextAugmentConfig = field(default_factory=TextAugmentConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)


@dataclass
class DataConfig:
    name: str = "data"
    # which plug-ins the stages run: tabular (pipelines/modalities/tabular/cleaning.py, ...), text
    # (pipelines/modalities/text/) or image (pipelines/modalities/image/); every data config
    # declares `text`,
    # `image` and the tabular sections, since dvc.yaml tracks the same keys whatever the
    # modality
    modality: str = "tabular"
    source: SourceConfig = field(default_factory=SourceConfig)
    schema: SchemaConfig = field(default_factory=SchemaConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    clean: CleanConfig = field(default_factory=CleanConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    text: TextDataConfig = field(default_factory=TextDataConfig)
    image: ImageDataConfig = field(default_factory=ImageDataConfig)
    # processes for the batched `datasets` maps of ingest and clean (conform, cleaning rules,
    # imputation, feature encoding); None: in process. The output files are the same bytes
    # either way, so dvc.yaml does not declare it: changing it reruns nothing
    num_proc: int | None = bounded(None, **AT_LEAST_ONE)


# the image models (pipelines/models/image.py) share ModelConfig; their dense twins are
# image_cnn_dense and image_patch_dense
MOE_MODELS = ("moe_mlp", "moe_transformer", "image_cnn_moe", "image_patch_moe")
SEQUENCE_MODELS = ("moe_transformer", "dense_transformer", "bilstm_attention")


@dataclass
class ModelConfig:
    name: str = "moe_mlp"
    hidden_dim: int = bounded(64, **AT_LEAST_ONE)
    num_blocks: int = bounded(2, **AT_LEAST_ONE)
    ffn_dim: int = bounded(128, **AT_LEAST_ONE)
    num_experts: int = bounded(4, **AT_LEAST_ONE)
    top_k: int = bounded(2, **AT_LEAST_ONE)
    capacity_factor: float = bounded(1.25, **POSITIVE)
    eval_capacity_factor: float = bounded(2.0, **POSITIVE)
    min_capacity: int = bounded(4, **NON_NEGATIVE)
    noisy_gate_policy: str | None = None
    second_expert_sampling: bool = True
    aux_loss_weight: float = bounded(0.01, **NON_NEGATIVE)
    dropout: float = bounded(0.1, ge=0.0, lt=1.0)
    # sequence models only: how many of the customer's transactions (the current one last)
    # one example holds, and the attention heads of the Transformer encoder
    seq_len: int = bounded(16, **AT_LEAST_ONE)
    num_heads: int = bounded(4, **AT_LEAST_ONE)
    # the width of one attention head; None: hidden_dim / num_heads (the usual layout). Set
    # when heads are pruned: the remaining heads keep their width
    head_dim: int | None = bounded(None, **AT_LEAST_ONE)

    @property
    def attention_head_dim(self) -> int:
        return self.head_dim if self.head_dim is not None else self.hidden_dim // self.num_heads

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


@dataclass
class DynamicQuantConfig:
    enabled: bool = True
    per_channel: bool = False
    weight_type: str = "qint8"


@dataclass
class StaticQuantConfig:
    enabled: bool = True
    calibration_method: str = "minmax"
    calibration_rows: int = bounded(2048, **AT_LEAST_ONE)
    per_channel: bool = False


@dataclass
class Fp16Config:
    # an FP16 copy of the FP32 graph (inputs and outputs stay float32): a GPU format; ONNX
    # Runtime's CPU provider runs it through casts, for parity checks only
    enabled: bool = True


@dataclass
class PruneConfig:
    # structured L1 pruning of every feed-forward block (each expert's and each dense block's
    # hidden width) and of the attention heads: the weakest units by L1 norm go, the layers
    # are rebuilt narrower (not masked), and the model is fine-tuned after each step
    enabled: bool = True
    step: float = bounded(0.2, gt=0.0, lt=1.0)  # share of the original width removed per step
    target: float = bounded(0.6, gt=0.0, lt=1.0)  # share removed in all (steps: target / step)
    finetune_epochs: int = bounded(1, **AT_LEAST_ONE)  # after each step
    lr_factor: float = bounded(0.1, gt=0.0, le=1.0)  # fine-tuning lr = train.lr * lr_factor
    int8: bool = True  # also a dynamic INT8 copy of the pruned model (quantize.dynamic's keys)
    # Transformers: each step also removes the same share of the attention heads (by the L1
    # norm of their query/key/value rows); heads keep their width
    heads: bool = True


@dataclass
class StudentConfig:
    # the student is the dense counterpart of the teacher's family (moe_mlp -> dense_mlp,
    # moe_transformer -> dense_transformer), at these sizes
    hidden_dim: int = bounded(32, **AT_LEAST_ONE)
    num_blocks: int = bounded(1, **AT_LEAST_ONE)
    ffn_dim: int = bounded(64, **AT_LEAST_ONE)


@dataclass
class DistillConfig:
    # knowledge distillation: the student learns the teacher's soft targets (its
    # probabilities at `temperature`) mixed with the labels
    enabled: bool = True
    student: StudentConfig = field(default_factory=StudentConfig)
    temperature: float = bounded(2.0, **POSITIVE)
    alpha: float = bounded(0.7, ge=0.0, le=1.0)  # weight of the soft-target loss
    # from scratch, so more epochs than the fine-tunes: 8 beat 4 on validation AUPRC (README)
    epochs: int = bounded(8, **AT_LEAST_ONE)
    lr_factor: float = bounded(1.0, gt=0.0, le=10.0)  # student lr = train.lr * lr_factor
    int8: bool = True  # also a dynamic INT8 copy of the student


@dataclass
class QatConfig:
    # quantization-aware training: fake-quant (INT8 weights per channel, UINT8 activations)
    # during fine-tuning of the trained model, exported as an ONNX QDQ graph
    enabled: bool = True
    finetune_epochs: int = bounded(1, **AT_LEAST_ONE)
    lr_factor: float = bounded(0.1, gt=0.0, le=1.0)
    per_channel: bool = True


@dataclass
class QuantizeConfig:
    # 13: per-channel QDQ needs it; 20: the TorchScript exporter's newest
    opset: int = bounded(17, ge=13, le=20)
    # the first layer sees standardised raw features, whose range rare one-hot levels set;
    # INT8 there cost most of the quantized models' error (pipelines/quantization.py)
    keep_input_fp32: bool = True
    dynamic: DynamicQuantConfig = field(default_factory=DynamicQuantConfig)
    static: StaticQuantConfig = field(default_factory=StaticQuantConfig)
    fp16: Fp16Config = field(default_factory=Fp16Config)
    prune: PruneConfig = field(default_factory=PruneConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    qat: QatConfig = field(default_factory=QatConfig)


@dataclass
class ThresholdConfig:
    """How the decision threshold is chosen on the validation split (then applied unchanged
    to test): max_f1, the highest recall at target_fpr, the least expected cost, or fixed."""

    rule: str = "max_f1"
    fixed: float = bounded(0.5, gt=0.0, lt=1.0)
    target_fpr: float = bounded(0.01, gt=0.0, lt=1.0)
    cost_false_positive: float = bounded(1.0, **NON_NEGATIVE)
    cost_false_negative: float = bounded(5.0, **NON_NEGATIVE)


@dataclass
class EvaluateConfig:
    # recall at this false-positive rate is reported for every variant
    target_fpr: float = bounded(0.01, gt=0.0, lt=1.0)
    threshold: ThresholdConfig = field(default_factory=ThresholdConfig)
    # fewer test positives than this: the report says its metrics are unreliable
    min_test_positives: int = bounded(10, **NON_NEGATIVE)
    latency_batch_sizes: list[int] = bounded(factory=lambda: [1, 256], **AT_LEAST_ONE)
    latency_repeats: int = bounded(30, **AT_LEAST_ONE)
    threads: int = bounded(2, **AT_LEAST_ONE)
    # images: the precision of each variant's defect score (1 - p(data.image.good_class)) at
    # the threshold that finds this share of the defective test images
    defect_recall: float = bounded(0.95, gt=0.0, le=1.0)
    # classical models trained on the model's train split, reported beside its variants (never
    # shipped): each of BASELINES, or [] for none
    baselines: list[str] = field(
        default_factory=lambda: ["logistic_regression", "hist_gradient_boosting"]
    )


BASELINES = ("logistic_regression", "hist_gradient_boosting")


@dataclass
class SelectConfig:
    """Which ONNX variant export ships: `variant` (rule=variant), or the fastest variant at
    `batch_size` whose test AUPRC is at least `min_auprc_kept` of the FP32 model's
    (rule=fastest; timed by export with `threads` threads, median of `repeats` calls)."""

    rule: str = "variant"
    variant: str = "fp32"
    min_auprc_kept: float = bounded(0.99, gt=0.0, le=1.0)
    batch_size: int = bounded(256, **AT_LEAST_ONE)
    threads: int = bounded(2, **AT_LEAST_ONE)
    repeats: int = bounded(50, **AT_LEAST_ONE)


@dataclass
class ExportConfig:
    select: SelectConfig = field(default_factory=SelectConfig)
    parity_batch_sizes: list[int] = bounded(factory=lambda: [1, 7, 256], **AT_LEAST_ONE)
    parity_atol: float = bounded(1e-4, **POSITIVE)
    quantized_atol: float = bounded(0.05, **POSITIVE)
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
    # numpy's generators take seeds in [0, 2**32)
    seed: int = bounded(42, ge=0, lt=2**32)
    optimized_metric: str = "val/auprc"


# the ONNX variants quantize can write (models/onnx/model_<variant>.onnx)
VARIANTS = (
    "fp32",
    "int8_dynamic",
    "int8_static",
    "fp16",
    "pruned",
    "pruned_int8_dynamic",
    "student",
    "student_int8_dynamic",
    "qat_int8",
)

CHOICES: dict[str, tuple[str, ...]] = {
    "data.source.kind": (
        "simulator",
        "file",
        "german_credit",
        "rotten_tomatoes",
        "hub",
        "imagefolder",
        "digits",
    ),
    "data.source.format": ("csv", "parquet", "json", "text"),
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
        "image_cnn_moe",
        "image_cnn_dense",
        "image_patch_moe",
        "image_patch_dense",
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
    "evaluate.threshold.rule": ("max_f1", "target_fpr", "min_cost", "fixed"),
    "export.select.rule": ("variant", "fastest"),
    "export.select.variant": VARIANTS,
    "export.tensorrt": ("auto", "off"),
}


# list-valued keys whose items are each one of the choices
LIST_CHOICES: dict[str, tuple[str, ...]] = {"evaluate.baselines": BASELINES}

# keys that moved: an old override names the new key instead of failing as a typo
MOVED = {"export.variant": "export.select.variant (with export.select.rule=variant)"}


# YAML 1.1 (OmegaConf's dotlist parser) reads off/no as false and on/yes as true, so a choice
# spelled that way on the command line (`export.tensorrt=off`) arrives as a boolean
_YAML_BOOLEAN_WORDS = {False: ("off", "no"), True: ("on", "yes")}


def _check_choices(cfg: DictConfig, source: str) -> None:
    for key, allowed in CHOICES.items():
        value = OmegaConf.select(cfg, key)
        if isinstance(value, bool) or value in ("False", "True"):
            flag = value if isinstance(value, bool) else value == "True"
            words = [w for w in _YAML_BOOLEAN_WORDS[flag] if w in allowed]
            if len(words) == 1:
                OmegaConf.update(cfg, key, words[0])
                value = words[0]
        if value is not None and value not in allowed:
            raise PipelineError(
                f"{source}: config key '{key}' = {value!r}: expected one of {', '.join(allowed)}"
            )
    for key, allowed in LIST_CHOICES.items():
        for item in OmegaConf.select(cfg, key) or []:
            if item not in allowed:
                raise PipelineError(
                    f"{source}: config key '{key}' has {item!r}: expected items each one of "
                    f"{', '.join(allowed)}"
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
    # the modality's own rules: which models it takes, its section's invariants
    modality(cfg.data.modality).check(cfg, source)
    model = cfg.model
    if (
        model.name in ("moe_transformer", "dense_transformer")
        and model.head_dim is None
        and model.hidden_dim % model.num_heads
    ):
        # without an explicit head_dim, hidden_dim is split into num_heads equal parts
        raise PipelineError(
            f"{source}: config keys 'model.hidden_dim' = {model.hidden_dim}, 'model.num_heads' "
            f"= {model.num_heads}: {model.name} expects hidden_dim divisible by num_heads "
            "(or model.head_dim set)"
        )
    if model.name == "bilstm_attention" and model.hidden_dim % 2:
        # hidden_dim is both directions together, half each
        raise PipelineError(
            f"{source}: config key 'model.hidden_dim' = {model.hidden_dim}: bilstm_attention "
            "expects an even number (half per LSTM direction)"
        )
    gates = cfg.data.profile.gates
    if gates.min_positive_fraction > gates.max_positive_fraction:
        raise PipelineError(
            f"{source}: config keys 'data.profile.gates.min_positive_fraction' = "
            f"{gates.min_positive_fraction} > 'data.profile.gates.max_positive_fraction' = "
            f"{gates.max_positive_fraction}; expected min <= max"
        )
    weight = cfg.train.pos_weight
    if weight not in (None, "auto") and (
        isinstance(weight, bool)
        or not isinstance(weight, int | float)
        or not math.isfinite(weight)
        or not weight > 0
    ):
        raise PipelineError(
            f"{source}: config key 'train.pos_weight' = {weight!r}: "
            "expected null, 'auto' or a finite number > 0"
        )
    for column, rule in cfg.data.clean.ranges.items():
        if rule.min is not None and rule.max is not None and rule.min > rule.max:
            raise PipelineError(
                f"{source}: config key 'data.clean.ranges.{column}': min = {rule.min} > "
                f"max = {rule.max}; expected min <= max"
            )


def _check_bounds(node: Any, prefix: str, source: str) -> None:
    """Every field declared with `bounded(...)`, anywhere in the tree, within its range."""
    for spec in dataclasses.fields(node):
        value = getattr(node, spec.name)
        key = f"{prefix}{spec.name}"
        bounds: Bounds | None = spec.metadata.get("bounds")
        if bounds is not None and value is not None:
            items = value if isinstance(value, list) else [value]
            if isinstance(value, list) and not value:
                raise PipelineError(f"{source}: config key '{key}' = []: expected a non-empty list")
            for item in items:
                if not bounds.admits(item):
                    raise PipelineError(
                        f"{source}: config key '{key}' = {value!r}: expected "
                        + ("items each " if isinstance(value, list) else "")
                        + bounds.describe()
                    )
        if dataclasses.is_dataclass(value):
            _check_bounds(value, f"{key}.", source)
        elif isinstance(value, dict):
            for name, item in value.items():
                if dataclasses.is_dataclass(item):
                    _check_bounds(item, f"{key}.{name}.", source)


def schema_keys(node: Any = PipelineConfig, prefix: str = "") -> list[str]:
    """Every dotted key the schema declares (not the free-form dicts' contents)."""
    keys = []
    hints = {f.name: f for f in dataclasses.fields(node)}
    for name, spec in hints.items():
        key = f"{prefix}{name}"
        keys.append(key)
        default = (
            spec.default_factory()  # type: ignore[misc]
            if spec.default_factory is not dataclasses.MISSING
            else spec.default
        )
        if dataclasses.is_dataclass(default):
            keys.extend(schema_keys(type(default), f"{key}."))
    return keys


FREE_FORM = ("strategy.config.", "data.clean.ranges.", "data.clean.allowed_values.")


def unknown_key_message(key: str) -> str | None:
    """For a dotted key the schema does not have: "did you mean ..." with the closest valid
    keys; None when the key is valid or lies inside a free-form mapping."""
    key = key.lstrip("+~")
    if key in MOVED:
        return f"config key '{key}' has moved: use {MOVED[key]}"
    keys = schema_keys()
    if key in keys or key.startswith(FREE_FORM):
        return None
    parent = key.rpartition(".")[0]
    siblings = [k for k in keys if k.rpartition(".")[0] == parent]
    close = difflib.get_close_matches(key, siblings, n=2, cutoff=0.8) or (
        difflib.get_close_matches(key, keys, n=2, cutoff=0.8)
    )
    if close:
        return f"config key '{key}' is not in the schema: did you mean {' or '.join(close)}?"
    where = f"keys under '{parent}': " + ", ".join(k.rpartition(".")[2] for k in siblings)
    return f"config key '{key}' is not in the schema; " + (
        where if siblings else "see pipelines/config.py for the keys"
    )


def validate(cfg: DictConfig | dict, source: str = "config") -> PipelineConfig:
    """Merge `cfg` onto the schema; unknown keys, wrong types and bad choices fail here."""
    raw = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(cfg)
    raw = OmegaConf.masked_copy(raw, [k for k in raw if k != "hydra"])
    from pipelines.lightning_options import split_extras  # imports config: no cycle at load

    raw = split_extras(raw, source)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(PipelineConfig), raw)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "?"
        unknown = unknown_key_message(key) if key != "?" else None
        if unknown:
            raise PipelineError(f"{source}: {unknown}") from None
        reason = str(err).splitlines()[0]
        raise PipelineError(f"{source}: config key '{key}': {reason}") from None
    _check_choices(merged, source)
    try:
        typed: PipelineConfig = OmegaConf.to_object(merged)  # type: ignore[assignment]
    except PipelineError as err:
        # a section's own __post_init__ check (the text settings) names the key, not the file
        raise PipelineError(f"{source}: {err}") from None
    _check_bounds(typed, "", source)
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
            # Hydra's "+key=value" (add a key) reads as a plain override here: the schema
            # decides whether the key exists
            plain = [o.removeprefix("++").removeprefix("+") for o in overrides]
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(plain))
    except (OmegaConfBaseException, yaml.YAMLError) as err:
        reason = " ".join(str(err).split())
        raise PipelineError(f"{path}: not a valid params file: {reason}") from None
    return validate(cfg, source=str(path))


def to_container(section: Any) -> Any:
    """A plain dict/list view of a config dataclass, for JSON files and W&B."""
    return OmegaConf.to_container(OmegaConf.structured(section), resolve=True)
