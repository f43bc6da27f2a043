"""A classifier as ONNX files, whatever its modality: FP32, dynamic INT8 and static INT8 made
from one pre-processed FP32 graph, the MoE gates found and kept FP32, scoring an ONNX file in
batches, and the parity check against PyTorch.

A modality supplies what truly differs: how its model is exported to FP32, ORT's
pre-processing that its graph survives, which nodes stay FP32, which operators each INT8
variant quantizes, its calibration batches, and how a batch of its inputs becomes the graph's
feed (pipelines.modalities.text.onnx_variants, pipelines.modalities.image.onnx_variants).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from torch import nn

from pipelines.quantization import METHODS, QUANTIZED_OPS, ArrayReader, _quiet_root_logger
from pipelines.runtime import session
from pipelines.schema.compression import QuantizeConfig

FP32, INT8_DYNAMIC, INT8_STATIC = "fp32", "int8_dynamic", "int8_static"
# the ONNX files quantize writes for a multi-class model (models/onnx/model_<variant>.onnx)
ONNX_VARIANTS = (FP32, INT8_DYNAMIC, INT8_STATIC)
# the output both exported classifiers name (pipelines.models.text, pipelines.models.image)
PROBABILITIES = "probabilities"
# rows per calibration run: histogram calibrators (entropy, percentile) keep every batch's
# activations, so batches stay modest
CALIBRATION_BATCH = 64

Feed = Callable[[np.ndarray], dict[str, np.ndarray]]


def variant_file(folder: Path, variant: str) -> Path:
    return folder / f"model_{variant}.onnx"


def available_variants(folder: Path) -> list[str]:
    """The ONNX variants quantize wrote into `folder`, in ONNX_VARIANTS order."""
    return [v for v in ONNX_VARIANTS if variant_file(folder, v).is_file()]


@dataclass(frozen=True)
class Quantization:
    """How one modality's FP32 graph becomes its INT8 variants."""

    prepare: Callable[[Path, Path], None]  # ORT's pre-processing, fp32 -> prepared
    excluded_nodes: Callable[[Path], list[str]]  # nodes left FP32, read off the prepared graph
    dynamic_ops: list[str]  # operator types dynamic INT8 quantizes
    static_ops: list[str]  # operator types static INT8 quantizes
    calibration: Callable[[], CalibrationDataReader]  # made only when static INT8 is enabled
    # run on the static INT8 file with the excluded nodes (image: route the gates on FP32)
    after_static: Callable[[Path, list[str]], None] | None = None


class FeedCalibrationReader(ArrayReader):
    """ArrayReader's equal-sized batches (the last topped up with the first rows, which the
    histogram calibrators need and min/max ignores), each made into the graph's feed."""

    def __init__(self, x: np.ndarray, batch_size: int, feed: Feed) -> None:
        super().__init__(x, batch_size)
        self.feed = feed

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self.batches, None)
        return None if batch is None else self.feed(batch)


def export_variants(
    folder: Path, export_fp32: Callable[[Path], None], cfg: QuantizeConfig, how: Quantization
) -> dict[str, Path]:
    """fp32.onnx always (written by `export_fp32`); int8_dynamic.onnx and int8_static.onnx as
    `cfg` enables them, both from the pre-processed FP32 graph, which is removed afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {FP32: folder / "fp32.onnx"}
    export_fp32(paths[FP32])
    if not (cfg.dynamic.enabled or cfg.static.enabled):
        return paths
    prepared = folder / "fp32_prepared.onnx"
    how.prepare(paths[FP32], prepared)
    excluded = how.excluded_nodes(prepared)
    try:
        with _quiet_root_logger():
            if cfg.dynamic.enabled:
                paths[INT8_DYNAMIC] = folder / "int8_dynamic.onnx"
                quantize_dynamic(
                    str(prepared),
                    str(paths[INT8_DYNAMIC]),
                    per_channel=cfg.dynamic.per_channel,
                    weight_type=(
                        QuantType.QInt8 if cfg.dynamic.weight_type == "qint8" else QuantType.QUInt8
                    ),
                    op_types_to_quantize=how.dynamic_ops,
                    nodes_to_exclude=excluded,
                )
            if cfg.static.enabled:
                reader = how.calibration()
                paths[INT8_STATIC] = folder / "int8_static.onnx"
                quantize_static(
                    str(prepared),
                    str(paths[INT8_STATIC]),
                    reader,
                    quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                    per_channel=cfg.static.per_channel,
                    calibrate_method=METHODS[cfg.static.calibration_method],
                    op_types_to_quantize=how.static_ops,
                    nodes_to_exclude=excluded,
                )
                if how.after_static is not None:
                    how.after_static(paths[INT8_STATIC], excluded)
    finally:
        prepared.unlink(missing_ok=True)
    return paths


def softmax_gates(path: Path, weighted_only: bool) -> list[str]:
    """The MoE gates: matrix products read by a Softmax whose output stays inside the graph
    (a classifier's own softmax is the graph's output, so its head is not a gate), and with
    `weighted_only` only those multiplying by a weight (an initializer). The gates stay FP32:
    INT8 gate logits can flip which experts a token, image or patch goes to."""
    graph = onnx.load(str(path)).graph
    outputs = {o.name for o in graph.output}
    weights = {t.name for t in graph.initializer}
    gate_inputs = {
        name
        for node in graph.node
        if node.op_type == "Softmax" and not set(node.output) & outputs
        for name in node.input
    }
    gates = [
        node.name
        for node in graph.node
        if node.op_type in QUANTIZED_OPS
        and node.output[0] in gate_inputs
        and (not weighted_only or any(name in weights for name in node.input[1:]))
    ]
    # ORT's dynamic quantizer first rewrites a Gemm as '<name>_MatMul' + Add
    return [*gates, *(f"{name}_MatMul" for name in gates)]


def route_in_fp32(path: Path, routers: list[str]) -> None:
    """Point each router back at the FP32 tensor its quantized input was made from. In QDQ
    format ORT inserts one QuantizeLinear/DequantizeLinear pair per quantized tensor and
    rewires every reader to the dequantized copy, excluded nodes included, so a router left
    out of quantization would still route on INT8-rounded features; the experts beside it
    keep reading the rounded copy, as their integer kernels need."""
    model = onnx.load(str(path))
    producer = {out: node for node in model.graph.node for out in node.output}
    for node in model.graph.node:
        if node.name not in routers:
            continue
        dq = producer.get(node.input[0])
        if dq is None or dq.op_type != "DequantizeLinear":
            continue
        q = producer.get(dq.input[0])
        if q is not None and q.op_type == "QuantizeLinear":
            node.input[0] = q.input[0]
    onnx.save(model, str(path))


def batch_scorer(
    path: Path, threads: int, feed: Feed, batch_size: int = 256
) -> Callable[[np.ndarray], np.ndarray]:
    """Class probabilities (n, classes) of an ONNX file over inputs `x`, `batch_size` rows per
    call; `feed` makes one batch into the graph's inputs. One session serves every call."""
    sess = session(path, threads)

    def score(x: np.ndarray, batch_size: int = batch_size) -> np.ndarray:
        out = [
            sess.run([PROBABILITIES], feed(x[start : start + batch_size]))[0]
            for start in range(0, len(x), batch_size)
        ]
        if out:
            return np.concatenate(out)
        return np.zeros((0, sess.get_outputs()[0].shape[1]), dtype=np.float32)

    return score


def parity(model: nn.Module, path: Path, feeds: Iterable[dict[str, np.ndarray]]) -> float:
    """Largest absolute difference of any class probability between the PyTorch model (eval
    mode, fed each feed's arrays in order) and the ONNX file over `feeds`: 0 up to float noise
    for the FP32 graph, the INT8 error for a quantized one."""
    model = model.eval()
    sess = session(path, threads=2)
    worst = 0.0
    for feed in feeds:
        with torch.no_grad():
            logits = model(*(torch.from_numpy(array) for array in feed.values()))
        expected = torch.softmax(logits, dim=-1).numpy()
        (actual,) = sess.run([PROBABILITIES], feed)
        worst = max(worst, float(np.abs(actual - expected).max()))
    return worst
