"""evaluate and export: how variants are compared and which one ships."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.schema.fields import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, bounded


@dataclass
class ThresholdConfig:
    """How the decision threshold is chosen on the validation split (then applied unchanged
    to test): max_f1, the highest recall at target_fpr, the least expected cost, or fixed."""

    rule: str = "max_f1"
    """How each variant's decision threshold is chosen on the validation split."""
    fixed: float = bounded(0.5, gt=0.0, lt=1.0)
    """The threshold when rule is `fixed`."""
    target_fpr: float = bounded(0.01, gt=0.0, lt=1.0)
    """rule `target_fpr`: the highest recall with FPR at most this."""
    cost_false_positive: float = bounded(1.0, **NON_NEGATIVE)
    """rule `min_cost`: cost of a false positive."""
    cost_false_negative: float = bounded(5.0, **NON_NEGATIVE)
    """rule `min_cost`: cost of a false negative."""


@dataclass
class EvaluateConfig:
    target_fpr: float = bounded(0.01, gt=0.0, lt=1.0)
    """Recall at this false-positive rate is reported for every variant."""
    threshold: ThresholdConfig = field(default_factory=ThresholdConfig)
    min_test_positives: int = bounded(10, **NON_NEGATIVE)
    """Fewer test positives than this: the report says its metrics are unreliable."""
    latency_batch_sizes: list[int] = bounded(factory=lambda: [1, 256], **AT_LEAST_ONE)
    """Batch sizes each variant is timed at."""
    latency_repeats: int = bounded(30, **AT_LEAST_ONE)
    """Timed calls per variant and batch size (round-robin)."""
    threads: int = bounded(2, **AT_LEAST_ONE)
    """Threads for ONNX Runtime, torch and the baselines' OpenMP/BLAS while timing."""
    defect_recall: float = bounded(0.95, gt=0.0, le=1.0)
    """Images: the precision of each variant's defect score (1 - p(data.image.good_class)) at the
    threshold that finds this share of the defective test images."""
    baselines: list[str] = field(
        default_factory=lambda: ["logistic_regression", "hist_gradient_boosting"]
    )
    """Classical models trained on the model's train split, converted to ONNX and compared with
    its variants as export candidates (tables): each of BASELINES, or [] for none."""


BASELINES = ("logistic_regression", "hist_gradient_boosting")


@dataclass
class SelectConfig:
    """What export ships, among every ONNX variant of the model and (tables) every scikit-learn
    baseline converted to ONNX: the candidate with the highest validation AUPRC (rule=best;
    macro-F1 for multi-class models),
    the named one (rule=variant), or the fastest at `batch_size` whose test AUPRC is at least
    `min_auprc_kept` of the FP32 model's (rule=fastest; timed by export with `threads`
    threads, median of `repeats` calls)."""

    rule: str = "variant"
    """`best`: the highest validation AUPRC, whatever its kind (validation macro-F1 of the ONNX
    variants for multi-class models); `variant`: ship the named variant; `fastest`: the fastest
    that keeps min_auprc_kept of FP32's AUPRC."""
    variant: str = "fp32"
    """rule `variant`: the candidate shipped (a model variant, or a baseline such as
    `sklearn_hist_gradient_boosting`)."""
    min_auprc_kept: float = bounded(0.99, gt=0.0, le=1.0)
    """rule `fastest`: smallest share of the FP32 model's test AUPRC a candidate keeps."""
    batch_size: int = bounded(256, **AT_LEAST_ONE)
    """rule `fastest`: the batch size the candidates are timed at."""
    threads: int = bounded(2, **AT_LEAST_ONE)
    """rule `fastest`: ONNX Runtime threads while timing."""
    repeats: int = bounded(50, **AT_LEAST_ONE)
    """rule `fastest`: timed calls per candidate."""


@dataclass
class ExportConfig:
    select: SelectConfig = field(default_factory=SelectConfig)
    parity_batch_sizes: list[int] = bounded(factory=lambda: [1, 7, 256], **AT_LEAST_ONE)
    """Batch sizes at which the shipped ONNX graph is checked against PyTorch."""
    parity_atol: float = bounded(1e-4, **POSITIVE)
    """Largest absolute score difference allowed for an FP32 graph."""
    quantized_atol: float = bounded(0.05, **POSITIVE)
    """Largest absolute score difference allowed for a quantized graph."""
    tensorrt: str = "auto"
    """Build a TensorRT FP16 engine when a GPU and TensorRT exist (`auto`), or never (`off`)."""


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
    "evaluate.threshold.rule": ("max_f1", "target_fpr", "min_cost", "fixed"),
    "export.select.rule": ("variant", "fastest", "best"),
    "export.select.variant": (*VARIANTS, *(f"sklearn_{kind}" for kind in BASELINES)),
    "export.tensorrt": ("auto", "off"),
}
