"""quantize: the compressed variants quantize builds (INT8, FP16, pruning, distillation, QAT)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.schema.fields import AT_LEAST_ONE, POSITIVE, bounded


@dataclass
class DynamicQuantConfig:
    enabled: bool = True
    """Build the ONNX Runtime dynamic INT8 variant."""
    per_channel: bool = False
    """Per-channel weight scales."""
    weight_type: str = "qint8"
    """INT8 weight type."""


@dataclass
class StaticQuantConfig:
    enabled: bool = True
    """Build the ONNX Runtime static INT8 variant (QDQ, calibrated on validation rows)."""
    calibration_method: str = "minmax"
    """How activation ranges are calibrated."""
    calibration_rows: int = bounded(2048, **AT_LEAST_ONE)
    """Validation rows the calibration reads."""
    per_channel: bool = False
    """Per-channel weight scales."""


@dataclass
class Fp16Config:
    enabled: bool = True
    """An FP16 copy of the FP32 graph (inputs and outputs stay float32): a GPU format; ONNX
    Runtime's CPU provider runs it through casts, for parity checks only."""


@dataclass
class PruneConfig:
    enabled: bool = True
    """Structured L1 pruning of every feed-forward block (each expert's and each dense block's
    hidden width) and of the attention heads: the weakest units by L1 norm go, the layers are
    rebuilt narrower (not masked), and the model is fine-tuned after each step."""
    step: float = bounded(0.2, gt=0.0, lt=1.0)
    """Share of the original width removed per step."""
    target: float = bounded(0.6, gt=0.0, lt=1.0)
    """Share removed in all (steps: target / step)"""
    finetune_epochs: int = bounded(1, **AT_LEAST_ONE)
    """After each step."""
    lr_factor: float = bounded(0.1, gt=0.0, le=1.0)
    """Fine-tuning lr = train.lr * lr_factor."""
    int8: bool = True
    """Also a dynamic INT8 copy of the pruned model (quantize.dynamic's keys)"""
    heads: bool = True
    """Transformers: each step also removes the same share of the attention heads (by the L1 norm of
    their query/key/value rows); heads keep their width."""


@dataclass
class StudentConfig:
    hidden_dim: int = bounded(32, **AT_LEAST_ONE)
    """The student is the dense counterpart of the teacher's family (moe_mlp -> dense_mlp,
    moe_transformer -> dense_transformer), at these sizes."""
    num_blocks: int = bounded(1, **AT_LEAST_ONE)
    """The student's blocks."""
    ffn_dim: int = bounded(64, **AT_LEAST_ONE)
    """The student's feed-forward width."""


@dataclass
class DistillConfig:
    enabled: bool = True
    """Knowledge distillation: the student learns the teacher's soft targets (its probabilities at
    `temperature`) mixed with the labels."""
    student: StudentConfig = field(default_factory=StudentConfig)
    """The student's size."""
    temperature: float = bounded(2.0, **POSITIVE)
    """Softening temperature T of the teacher's and the student's logits."""
    alpha: float = bounded(0.7, ge=0.0, le=1.0)
    """Weight of the soft-target loss."""
    epochs: int = bounded(8, **AT_LEAST_ONE)
    """From scratch, so more epochs than the fine-tunes: 8 beat 4 on validation AUPRC (README)"""
    lr_factor: float = bounded(1.0, gt=0.0, le=10.0)
    """Student lr = train.lr * lr_factor."""
    int8: bool = True
    """Also a dynamic INT8 copy of the student."""


@dataclass
class QatConfig:
    enabled: bool = True
    """Quantization-aware training: fake-quant (INT8 weights per channel, UINT8 activations) during
    fine-tuning of the trained model, exported as an ONNX QDQ graph."""
    finetune_epochs: int = bounded(1, **AT_LEAST_ONE)
    """Epochs of fine-tuning with fake quantization."""
    lr_factor: float = bounded(0.1, gt=0.0, le=1.0)
    """Fine-tune learning rate as a share of train.lr."""
    per_channel: bool = True
    """Per-output-channel INT8 weight scales."""


@dataclass
class QuantizeConfig:
    opset: int = bounded(17, ge=13, le=20)
    """ONNX opset of the exported graphs (13 at least: per-channel QDQ needs it; 20: the TorchScript
    exporter's newest)."""
    keep_input_fp32: bool = True
    """The first layer sees standardised raw features, whose range rare one-hot levels set; INT8
    there cost most of the quantized models' error (pipelines/quantization.py)"""
    dynamic: DynamicQuantConfig = field(default_factory=DynamicQuantConfig)
    """ONNX Runtime dynamic INT8 (weights INT8, activations quantized per call)."""
    static: StaticQuantConfig = field(default_factory=StaticQuantConfig)
    """ONNX Runtime static INT8 (QDQ, activation ranges calibrated on validation rows)."""
    fp16: Fp16Config = field(default_factory=Fp16Config)
    """An FP16 copy for GPUs (on CPU it runs for parity checks only)."""
    prune: PruneConfig = field(default_factory=PruneConfig)
    """Structured L1 pruning of the feed-forward widths (and attention heads), each step fine-
    tuned."""
    distill: DistillConfig = field(default_factory=DistillConfig)
    """A dense student of the teacher's family, trained on the teacher's soft targets."""
    qat: QatConfig = field(default_factory=QatConfig)
    """Quantization-aware training: fake-quantized fine-tune, exported as QDQ INT8."""


CHOICES: dict[str, tuple[str, ...]] = {
    "quantize.dynamic.weight_type": ("qint8", "quint8"),
    "quantize.static.calibration_method": ("minmax", "entropy", "percentile"),
}
