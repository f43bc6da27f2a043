"""quantize: the compressed variants quantize builds (INT8, FP16, pruning, distillation, QAT)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.schema.fields import AT_LEAST_ONE, POSITIVE, bounded


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


CHOICES: dict[str, tuple[str, ...]] = {
    "quantize.dynamic.weight_type": ("qint8", "quint8"),
    "quantize.static.calibration_method": ("minmax", "entropy", "percentile"),
}
