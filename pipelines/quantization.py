"""INT8 quantization with ONNX Runtime's own tools: dynamic (weights only) and static (QDQ,
activations calibrated on held-out rows with MinMax, Entropy or Percentile)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from pipelines.config import DynamicQuantConfig, StaticQuantConfig
from pipelines.onnx_export import INPUT

# The dense layers (input projection, experts, head) are quantized; the MoE router stays FP32:
# INT8 gate logits can flip which experts a row goes to, and calibrating the -inf-masked
# routing tensors breaks percentile/entropy calibration.
QUANTIZED_OPS = ["MatMul", "Gemm"]

METHODS = {
    "minmax": CalibrationMethod.MinMax,
    "entropy": CalibrationMethod.Entropy,
    "percentile": CalibrationMethod.Percentile,
}


class ArrayReader(CalibrationDataReader):
    """Feeds calibration rows in batches."""

    def __init__(self, x: np.ndarray, batch_size: int = 256) -> None:
        self.batches = iter([x[i : i + batch_size] for i in range(0, len(x), batch_size)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self.batches, None)
        return None if batch is None else {INPUT: batch}


def preprocess(fp32: Path, out: Path) -> None:
    """ORT's recommended pre-processing: symbolic shape inference and graph optimisation.
    ORT's symbolic shape inference cannot follow a Reshape to a shape computed at run time
    (the sequence models' MoE routing flattens batch x positions); ONNX's own shape
    inference still runs then, as ORT documents for such models."""
    try:
        quant_pre_process(str(fp32), str(out), skip_symbolic_shape=False)
    except AssertionError:
        quant_pre_process(str(fp32), str(out), skip_symbolic_shape=True)


def router_nodes(path: Path) -> list[str]:
    """The MoE gates: the matrix products whose output goes straight into a softmax."""
    graph = onnx.load(str(path)).graph
    softmax_inputs = {
        name for node in graph.node if node.op_type == "Softmax" for name in node.input
    }
    return [
        node.name
        for node in graph.node
        if node.op_type in QUANTIZED_OPS and node.output[0] in softmax_inputs
    ]


def dynamic_int8(fp32: Path, out: Path, cfg: DynamicQuantConfig) -> None:
    with _quiet_root_logger():
        _dynamic_int8(fp32, out, cfg)


def _dynamic_int8(fp32: Path, out: Path, cfg: DynamicQuantConfig) -> None:
    quantize_dynamic(
        str(fp32),
        str(out),
        per_channel=cfg.per_channel,
        weight_type=QuantType.QInt8 if cfg.weight_type == "qint8" else QuantType.QUInt8,
        op_types_to_quantize=QUANTIZED_OPS,
        nodes_to_exclude=router_nodes(fp32),
    )


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """ORT's quantizer logs one INFO line per unquantized tensor on the root logger, which a
    Hydra app prints; keep those out of the run's console and log."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        root.setLevel(level)


def static_int8(fp32: Path, out: Path, calibration: np.ndarray, cfg: StaticQuantConfig) -> None:
    with _quiet_root_logger():
        _static_int8(fp32, out, calibration, cfg)


def _static_int8(fp32: Path, out: Path, calibration: np.ndarray, cfg: StaticQuantConfig) -> None:
    quantize_static(
        str(fp32),
        str(out),
        ArrayReader(calibration),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=cfg.per_channel,
        calibrate_method=METHODS[cfg.calibration_method],
        op_types_to_quantize=QUANTIZED_OPS,
        nodes_to_exclude=router_nodes(fp32),
    )
