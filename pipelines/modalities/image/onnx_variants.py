"""The image classifier as ONNX files: FP32, dynamic INT8 and static INT8, and the parity check
that decides whether a variant may ship.

Quantization reuses the tabular and text models' ONNX Runtime settings (pipelines.quantization:
QDQ static format, UINT8 activations, INT8 weights, the same calibration methods), with these
differences, each explained where it is made:

- Conv is quantized as well as MatMul/Gemm: the conv backbone holds the bulk of the CNN's
  weights and arithmetic, and the patchify conv is the patch model's first projection.
- Static INT8 quantizes weights per output channel as quantize.static.per_channel says, which
  the image experiments set (why: the comment below DYNAMIC_QUANTIZED_OPS).
- The first projection is quantized (QuantizeConfig.keep_input_fp32 is a tabular rule): a
  normalised image's range is set by (0 - mean) / std and (1 - mean) / std, a few units wide
  per channel, with none of the rare one-hot outliers that made the tabular input layer lose
  precision in INT8.
- Only the MoE router MatMuls stay FP32 (image_router_nodes): both image graphs end in the
  exported softmax, so the tabular rule "a MatMul feeding a Softmax" would also keep the class
  head FP32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from onnxruntime.quantization.shape_inference import quant_pre_process
from torch import nn

from pipelines.core.onnx_variants import (
    CALIBRATION_BATCH,
    FeedCalibrationReader,
    Quantization,
    batch_scorer,
    export_variants,
    parity,
    route_in_fp32,
    softmax_gates,
)
from pipelines.models.image import IMAGES, export_image_onnx
from pipelines.quantization import QUANTIZED_OPS
from pipelines.schema.compression import QuantizeConfig

IMAGE_QUANTIZED_OPS = [*QUANTIZED_OPS, "Conv"]
# Dynamic INT8 leaves Conv in FP32. ONNX Runtime 1.31.1 can run it (DynamicQuantizeLinear +
# ConvInteger), but its CPU ConvInteger is a slow reference kernel: measured on the default
# visual_inspection model (64x64, widths 16-64), dynamic INT8 with Conv took 331 ms at batch
# 32 against ONNX FP32's 31 ms. Static INT8 (QDQ, fused into QLinearConv) quantizes Conv.
DYNAMIC_QUANTIZED_OPS = list(QUANTIZED_OPS)
# BatchNorm is folded into each conv at export, which scales every output channel's filter by
# its own gamma / sqrt(var): one per-tensor INT8 scale, set by the largest filter, would leave
# the small filters a handful of levels. Per-channel scales cost 4 bytes per output channel.
# So conf/experiment/visual_inspection.yaml sets quantize.static.per_channel: true (the
# tabular default is false); a config that turns it off gets per-tensor weights, as it asks.


def preprocess_image(fp32: Path, out: Path) -> None:
    """ORT's pre-processing (shape inference, graph optimisation) before quantization. ORT's
    symbolic shape inference follows the CNN graph but not the patch model's routing (the
    expert capacity comes from the patch count at run time), where it raises AssertionError
    (measured, onnxruntime 1.31.1); ONNX's own shape inference still runs then, as ORT
    documents for such models."""
    try:
        quant_pre_process(str(fp32), str(out), skip_symbolic_shape=False)
    except Exception:  # any symbolic failure has the same fallback
        quant_pre_process(str(fp32), str(out), skip_symbolic_shape=True)


def image_router_nodes(path: Path) -> list[str]:
    """The MoE gates: MatMuls with a weight (an initializer) read by a Softmax whose output
    stays inside the graph. The class head also feeds a Softmax, but that one is the graph's
    output; the patch model's attention softmax reads a masked score (Where), not a MatMul.
    The gates stay FP32: INT8 gate logits can flip which experts an image or patch goes to."""
    return softmax_gates(path, weighted_only=True)


def export_image_variants(
    model: nn.Module,
    folder: Path,
    calibration_images: np.ndarray,
    image_size: int,
    cfg: QuantizeConfig,
    opset: int,
) -> dict[str, Path]:
    """fp32.onnx always (export_image_onnx: dynamic batch axis, checked against PyTorch);
    int8_dynamic.onnx and int8_static.onnx as `cfg` enables them, both from the pre-processed
    FP32 graph. The static one is calibrated on the first `cfg.static.calibration_rows` of
    `calibration_images` (normalised float32 (n, 3, H, W), held out from training) with
    `cfg.static.calibration_method`, per channel when cfg.static.per_channel says so
    (cfg.static.per_channel). Export, pre-processing and calibration draw no random numbers."""
    rows = np.ascontiguousarray(calibration_images[: cfg.static.calibration_rows], np.float32)
    # checked before any file is written: ORT would only fail after export and pre-processing,
    # with "No data is collected" or a shape error deep in its calibration session
    if cfg.static.enabled and (
        rows.ndim != 4 or rows.shape[1:] != (3, image_size, image_size) or not len(rows)
    ):
        raise ValueError(
            f"calibration images of shape {rows.shape}: expected (n >= 1, 3, {image_size}, "
            f"{image_size}) normalised float32 images"
        )
    how = Quantization(
        prepare=preprocess_image,
        excluded_nodes=image_router_nodes,
        dynamic_ops=DYNAMIC_QUANTIZED_OPS,
        static_ops=IMAGE_QUANTIZED_OPS,
        calibration=lambda: FeedCalibrationReader(rows, CALIBRATION_BATCH, image_feed),
        after_static=route_in_fp32,
    )
    return export_variants(
        folder, lambda fp32: export_image_onnx(model, fp32, opset, image_size), cfg, how
    )


def image_feed(images: np.ndarray) -> dict[str, np.ndarray]:
    """A batch of normalised images as the graph's feed."""
    return {IMAGES: np.ascontiguousarray(images, np.float32)}


def onnx_image_probabilities(
    path: Path, images: np.ndarray, threads: int | None = None, batch_size: int = 256
) -> np.ndarray:
    """Class probabilities (n, classes) of an exported image model over normalised float32
    images (n, 3, H, W), batch by batch. `threads`: ORT's intra-op threads (None: its
    default, one per core)."""
    return batch_scorer(path, threads or 0, image_feed, batch_size)(images)


def image_parity(
    model: nn.Module,
    path: Path,
    image_size: int,
    batches: tuple[int, ...] = (1, 3, 32),
    seed: int = 0,
) -> float:
    """Largest absolute difference of any class probability between the PyTorch model (eval
    mode) and the ONNX file, over seeded standard-normal images (the normalised scale) at each
    batch size: 0 up to float noise for the FP32 graph, the INT8 error for a quantized one."""
    rng = np.random.default_rng(seed)
    feeds = (
        {IMAGES: rng.standard_normal((rows, 3, image_size, image_size), dtype=np.float32)}
        for rows in batches
    )
    return parity(model, path, feeds)
