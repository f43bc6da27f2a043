"""The series classifier as ONNX files (FP32, dynamic INT8, static INT8) through the core's
variants (pipelines.core.onnx_variants), with the image CNN's choices for the same reasons:
static INT8 quantizes Conv too (QLinearConv; the Inception convolutions hold most of the
weights), dynamic INT8 leaves Conv in FP32 (ORT's CPU ConvInteger is a slow reference
kernel), the MoE routers stay FP32 and route on FP32 features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import nn

from pipelines.core.onnx_variants import (
    CALIBRATION_BATCH,
    FeedCalibrationReader,
    Quantization,
    export_variants,
    parity,
    route_in_fp32,
    softmax_gates,
)
from pipelines.models.timeseries import WINDOWS, export_series_onnx
from pipelines.quantization import QUANTIZED_OPS, preprocess
from pipelines.schema.compression import QuantizeConfig


def series_feed(windows: np.ndarray) -> dict[str, np.ndarray]:
    """A batch of normalised windows as the graph's feed."""
    return {WINDOWS: np.ascontiguousarray(windows, np.float32)}


def export_series_variants(
    model: nn.Module, folder: Path, calibration: np.ndarray, cfg: QuantizeConfig, opset: int
) -> dict[str, Path]:
    """fp32.onnx always; int8_dynamic.onnx and int8_static.onnx as `cfg` enables them, the
    static one calibrated on the first cfg.static.calibration_rows normalised windows of
    `calibration` (held out from training: val)."""
    rows = np.ascontiguousarray(calibration[: cfg.static.calibration_rows], np.float32)
    channels, length = rows.shape[1:]
    how = Quantization(
        prepare=preprocess,
        excluded_nodes=lambda path: softmax_gates(path, weighted_only=True),
        dynamic_ops=list(QUANTIZED_OPS),
        static_ops=[*QUANTIZED_OPS, "Conv"],
        calibration=lambda: FeedCalibrationReader(rows, CALIBRATION_BATCH, series_feed),
        after_static=route_in_fp32,
    )
    return export_variants(
        folder, lambda fp32: export_series_onnx(model, fp32, opset, channels, length), cfg, how
    )


def series_parity(
    model: nn.Module, path: Path, shape: tuple[int, int], batches: tuple[int, ...], seed: int
) -> float:
    """Largest class-probability difference between PyTorch and the ONNX file over seeded
    standard-normal windows (the normalised scale) of `shape` (channels, length) at each
    batch size."""
    rng = np.random.default_rng(seed)
    feeds = (series_feed(rng.standard_normal((rows, *shape), dtype=np.float32)) for rows in batches)
    return parity(model, path, feeds)
