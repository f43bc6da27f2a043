"""The text classifier as ONNX files: FP32, dynamic INT8 and static INT8, with the checks that
decide whether a variant may ship (parity with PyTorch, latency per batch size).

Every ONNX run here feeds token ids with the mask `ids != pad_id` and cuts each batch to its
longest text first, as training and the PyTorch scorer do (pipelines.models.text
.trim_to_longest): padding columns change no score but cost attention and MoE expert capacity.

Quantization reuses the tabular model's ONNX Runtime settings (pipelines.quantization: MatMul
and Gemm in INT8, QDQ static format, the same calibration methods) with three differences,
each explained where it is made: pre-processing skips ORT's symbolic shape inference
(preprocess_text); only the MoE router MatMuls stay FP32 (the tabular "router" rule also
matches the text head, whose output feeds the exported softmax); and the token embedding
table is quantized too (weights stored INT8, looked up then dequantized): at a real
vocabulary (8000 x 64) it holds most of the model's weights, so INT8 of the matrix products
alone leaves the file at about two thirds of FP32 (measured: 64% at vocabulary 2000, hidden
64), and a tiny model's INT8 file is even larger than its FP32 one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader
from onnxruntime.quantization.shape_inference import quant_pre_process

from pipelines.core.onnx_variants import (
    CALIBRATION_BATCH,
    Feed,
    Quantization,
    batch_scorer,
    export_variants,
    parity,
    softmax_gates,
)
from pipelines.evaluation import latency
from pipelines.models.text import ATTENTION_MASK, INPUT_IDS, TextClassifier, export_text_onnx
from pipelines.quantization import QUANTIZED_OPS
from pipelines.schema.compression import QuantizeConfig

# the matrix products, as for the tabular models, and the embedding lookup (text_excluded_nodes
# keeps every other Gather, the shape arithmetic and the [CLS] read, out)
TEXT_QUANTIZED_OPS = [*QUANTIZED_OPS, "Gather"]
# histogram calibrators (entropy, percentile) stack every batch's activations into one array
HISTOGRAM_METHODS = frozenset({"entropy", "percentile"})


def trimmed(ids: np.ndarray, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Ids and mask cut to the batch's longest text (numpy twin of trim_to_longest), both
    contiguous int64 as the graph's inputs are."""
    mask = (ids != pad_id).astype(np.int64)
    longest = max(int(mask.sum(axis=1).max(initial=0)), 1)
    return (
        np.ascontiguousarray(ids[:, :longest], dtype=np.int64),
        np.ascontiguousarray(mask[:, :longest]),
    )


def text_feed(pad_id: int) -> Feed:
    """A batch of token ids as the graph's feed: ids and mask cut to its longest text."""

    def feed(ids: np.ndarray) -> dict[str, np.ndarray]:
        batch_ids, mask = trimmed(ids, pad_id)
        return {INPUT_IDS: batch_ids, ATTENTION_MASK: mask}

    return feed


def onnx_text_probabilities(
    path: Path, ids: np.ndarray, pad_id: int, batch_size: int = 256, threads: int = 2
) -> np.ndarray:
    """Class probabilities (n, classes) of an exported text model, batch by batch."""
    return batch_scorer(path, threads, text_feed(pad_id), batch_size)(ids)


class TextCalibrationReader(CalibrationDataReader):
    """Calibration batches as the graph sees them at serving time: ids and mask, each batch
    cut to its longest text. `common_length` instead cuts every batch to the longest text of
    all the rows, and tops the last batch up with the first rows: ORT's entropy and percentile
    calibrators np.asarray the list of every batch's activations and fail ("inhomogeneous
    shape") unless all batches have one shape. The extra padding columns are masked out of
    attention, and padding positions are what mixed-length batches run at serving time too."""

    def __init__(
        self, ids: np.ndarray, pad_id: int, batch_size: int, common_length: bool = False
    ) -> None:
        batch_size = max(min(batch_size, len(ids)), 1)
        if common_length:
            n_batches = -(-len(ids) // batch_size)
            ids = trimmed(ids, pad_id)[0][np.arange(n_batches * batch_size) % len(ids)]
        self.batches: Iterator[np.ndarray] = iter(
            [ids[start : start + batch_size] for start in range(0, len(ids), batch_size)]
        )
        self.pad_id = pad_id

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self.batches, None)
        return None if batch is None else text_feed(self.pad_id)(batch)


def preprocess_text(fp32: Path, out: Path) -> None:
    """ORT's pre-processing before quantization (ONNX shape inference and graph optimisation)
    without ORT's symbolic shape inference, which always gives up on the MoE routing (expert
    capacity is computed from the token count at run time). It fails with a bare
    Exception("Incomplete symbolic shape inference"), not the AssertionError that
    pipelines.quantization.preprocess falls back on, and first saves its partial graph as
    sym_shape_infer_temp.onnx plus a <uuid>.data file in the working directory, one more
    file per attempt, so it is not tried at all."""
    quant_pre_process(str(fp32), str(out), skip_symbolic_shape=True)


def text_router_nodes(path: Path) -> list[str]:
    """The MoE gates: matrix products read by a Softmax whose output stays inside the graph.
    pipelines.quantization.router_nodes would also return the classifier head here, because
    the exported text graph ends in a softmax (the tabular graphs end in a sigmoid); the head
    is an ordinary dense layer and is quantized like the tabular head. The gates stay FP32:
    INT8 gate logits can flip which experts a token goes to."""
    return softmax_gates(path, weighted_only=False)


def text_excluded_nodes(path: Path) -> list[str]:
    """Nodes of TEXT_QUANTIZED_OPS left FP32: the MoE gates, and every Gather but the
    embedding lookup (the only one whose table is a weight): the others index shapes, the
    router's probabilities and the [CLS] position, where INT8 saves no bytes and only adds
    error."""
    graph = onnx.load(str(path)).graph
    weights = {t.name for t in graph.initializer}
    lookups = [n.name for n in graph.node if n.op_type == "Gather" and n.input[0] not in weights]
    return [*text_router_nodes(path), *lookups]


def export_text_variants(
    model: TextClassifier,
    out_dir: Path,
    calibration_ids: np.ndarray,
    pad_id: int,
    cfg: QuantizeConfig,
) -> dict[str, Path]:
    """fp32.onnx always; int8_dynamic.onnx and int8_static.onnx as `cfg` enables them, both
    from the pre-processed FP32 graph, the static one calibrated on the first
    `cfg.static.calibration_rows` rows of `calibration_ids`. The same inputs give the same
    files' outputs: export, pre-processing and calibration draw no random numbers."""
    rows = calibration_ids[: cfg.static.calibration_rows]
    how = Quantization(
        prepare=preprocess_text,
        excluded_nodes=text_excluded_nodes,
        dynamic_ops=TEXT_QUANTIZED_OPS,
        static_ops=TEXT_QUANTIZED_OPS,
        calibration=lambda: TextCalibrationReader(
            rows,
            pad_id,
            CALIBRATION_BATCH,
            common_length=cfg.static.calibration_method in HISTOGRAM_METHODS,
        ),
    )
    return export_variants(out_dir, lambda fp32: export_text_onnx(model, fp32, cfg.opset), cfg, how)


def random_text_batch(
    rows: int, length: int, vocab_size: int, pad_id: int, rng: np.random.Generator
) -> np.ndarray:
    """Token ids (rows, length): row 0 fills the length, the others are padded after a random
    number of real tokens (at least one, the [CLS] position). Real tokens avoid `pad_id`."""
    lengths = rng.integers(1, length + 1, size=rows)
    lengths[0] = length
    real = rng.integers(0, vocab_size - 1, size=(rows, length))
    real = real + (real >= pad_id)  # every id but pad_id
    return np.where(np.arange(length)[None, :] < lengths[:, None], real, pad_id).astype(np.int64)


def text_parity(
    model: TextClassifier,
    path: Path,
    pad_id: int,
    shapes: list[tuple[int, int]],
    seed: int,
) -> float:
    """Largest absolute difference of any class probability between the PyTorch model (eval
    mode) and the ONNX file, over random texts of each (batch, length) shape, most rows
    padded: 0 up to float noise for the FP32 graph, the INT8 error for a quantized one."""
    vocab_size = model.embed.num_embeddings
    rng = np.random.default_rng(seed)
    batches = (random_text_batch(rows, n, vocab_size, pad_id, rng) for rows, n in shapes)
    feeds = ({INPUT_IDS: ids, ATTENTION_MASK: (ids != pad_id).astype(np.int64)} for ids in batches)
    return parity(model, path, feeds)


def text_latency_ms(
    path: Path,
    ids: np.ndarray,
    pad_id: int,
    batch_sizes: list[int],
    repeats: int,
    threads: int,
) -> dict[int, float]:
    """Median milliseconds per call at each batch size (pipelines.evaluation.latency: 3 warm
    calls, then `repeats` timed ones), the trimming to the longest text included, since a
    scorer pays it on every call too."""
    predict = batch_scorer(path, threads, text_feed(pad_id), batch_size=max(batch_sizes))
    report = latency(predict, ids, batch_sizes, repeats)
    return {size: report[f"batch{size}"]["p50_ms"] for size in batch_sizes}
