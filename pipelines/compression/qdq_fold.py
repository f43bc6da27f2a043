"""Folding an exported QDQ graph so it is INT8 on disk and fused into ONNX Runtime's integer
kernels: the TorchScript exporter leaves each weight an FP32 initializer behind its own
QuantizeLinear, and a Gemm's FP32 bias keeps ORT from fusing DequantizeLinear -> Gemm into
QGemm (pipelines/compression/qat.py has the measurements). Graph surgery with onnx's helpers;
constant QuantizeLinear nodes are evaluated with onnx's reference implementation, so the folded
graph computes exactly what the unfolded one did, bias rounding aside."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

# ORT's CPU kernels that compute in integers; what a QDQ graph should be fused into
INTEGER_OPS = frozenset(
    {
        "QGemm",
        "QLinearMatMul",
        "MatMulInteger",
        "MatMulIntegerToFloat",
        "DynamicQuantizeMatMul",
        "QLinearConv",
        "QAttention",
    }
)


def fold_weights(proto: onnx.ModelProto) -> dict[str, int]:
    """In place: constant QuantizeLinear -> INT8 initializers; DequantizeLinear -> 2-D
    Transpose of those -> the transposed INT8 initializer (the exporter's MatMul form of a
    Linear on 3-D input); Gemm FP32 bias -> INT32 + DequantizeLinear."""
    graph = proto.graph
    _bypass_constant_identities(graph)
    weights = _fold_constant_quantize(graph)
    transposed = _fold_transposes(graph)
    biases = _quantize_gemm_biases(graph)
    _drop_unused_initializers(graph)
    return {"int8_weights": weights, "transposes_folded": transposed, "int32_biases": biases}


def _initializers(graph: onnx.GraphProto) -> dict[str, onnx.TensorProto]:
    return {init.name: init for init in graph.initializer}


def _producers(graph: onnx.GraphProto) -> dict[str, onnx.NodeProto]:
    return {out: node for node in graph.node for out in node.output}


def _consumers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    found: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            found.setdefault(name, []).append(node)
    return found


def _axis(node: onnx.NodeProto) -> int | None:
    return next((a.i for a in node.attribute if a.name == "axis"), None)


def _rename_input(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new


def _remove_nodes(graph: onnx.GraphProto, doomed: list[onnx.NodeProto]) -> None:
    ids = {id(node) for node in doomed}
    kept = [node for node in graph.node if id(node) not in ids]
    del graph.node[:]
    graph.node.extend(kept)


def _bypass_constant_identities(graph: onnx.GraphProto) -> None:
    """The exporter stores equal constants once (the all-zero weight zero points, equal
    activation scales) and gives the other uses an Identity of it; readers of those read the
    initializer itself, so the folds below see constants as constants."""
    inits = _initializers(graph)
    outputs = {o.name for o in graph.output}
    doomed = [
        node
        for node in graph.node
        if node.op_type == "Identity" and node.input[0] in inits and node.output[0] not in outputs
    ]
    for node in doomed:
        _rename_input(graph, node.output[0], node.input[0])
    _remove_nodes(graph, doomed)


def _fold_constant_quantize(graph: onnx.GraphProto) -> int:
    inits = _initializers(graph)
    doomed = []
    for node in graph.node:
        if node.op_type != "QuantizeLinear" or not all(i in inits for i in node.input if i):
            continue
        # the ONNX reference implementation of the node itself: the stored integers are
        # exactly what the runtime would have computed from the FP32 weight
        evaluator = ReferenceEvaluator(node)
        feeds = {name: numpy_helper.to_array(inits[name]) for name in node.input if name}
        quantized = evaluator.run(None, feeds)[0]
        name = f"{node.input[0]}_quantized"
        graph.initializer.append(numpy_helper.from_array(np.asarray(quantized), name))
        _rename_input(graph, node.output[0], name)
        doomed.append(node)
    _remove_nodes(graph, doomed)
    return len(doomed)


def _fold_transposes(graph: onnx.GraphProto) -> int:
    inits = _initializers(graph)
    producers, consumers = _producers(graph), _consumers(graph)
    doomed = []
    for node in graph.node:
        if node.op_type != "Transpose":
            continue
        perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), None)
        dq = producers.get(node.input[0])
        if (
            perm != [1, 0]
            or dq is None
            or dq.op_type != "DequantizeLinear"
            or dq.input[0] not in inits
            or len(consumers[dq.output[0]]) != 1
        ):
            continue
        data = numpy_helper.to_array(inits[dq.input[0]])
        name = f"{dq.input[0]}_transposed"
        graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(data.T), name))
        dq.input[0] = name
        axis = _axis(dq)
        if axis is not None:
            for attribute in dq.attribute:
                if attribute.name == "axis":
                    attribute.i = 1 - (axis % 2)
        dq.output[0] = node.output[0]
        doomed.append(node)
    _remove_nodes(graph, doomed)
    return len(doomed)


def _quantize_gemm_biases(graph: onnx.GraphProto) -> int:
    inits = _initializers(graph)
    producers = _producers(graph)
    added: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.op_type != "Gemm" or len(node.input) < 3 or node.input[2] not in inits:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1:
            continue
        a_dq, b_dq = producers.get(node.input[0]), producers.get(node.input[1])
        if not (
            a_dq is not None
            and b_dq is not None
            and a_dq.op_type == b_dq.op_type == "DequantizeLinear"
            and a_dq.input[1] in inits
            and b_dq.input[1] in inits
            and b_dq.input[0] in inits
        ):
            continue
        a_scale = numpy_helper.to_array(inits[a_dq.input[1]]).astype(np.float32)
        if a_scale.size != 1 or not attrs.get("transB", 0):
            continue  # per-row bias scales need the weight's output axis first
        b_scale = numpy_helper.to_array(inits[b_dq.input[1]]).astype(np.float32)
        bias = numpy_helper.to_array(inits[node.input[2]]).astype(np.float32)
        scale = (a_scale.reshape(()) * b_scale).astype(np.float32)
        if scale.size not in (1, bias.size):
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            levels = np.rint(bias / scale)
        # a vanishing scale (an all-zero weight row) would overflow INT32: that Gemm keeps
        # its FP32 bias and stays unfused
        if not np.all(np.isfinite(levels)) or np.abs(levels).max(initial=0) >= 2**31 - 1:
            continue
        name = f"{node.input[2]}_int32"
        graph.initializer.extend(
            [
                numpy_helper.from_array(levels.astype(np.int32), name),
                numpy_helper.from_array(scale.reshape(b_scale.shape), f"{name}_scale"),
            ]
        )
        per_row = {"axis": 0} if scale.size > 1 else {}
        dequantized = f"{name}_dequantized"
        added.append(
            helper.make_node(
                "DequantizeLinear",
                [name, f"{name}_scale"],
                [dequantized],
                name=f"{node.name}_bias_DequantizeLinear",
                **per_row,
            )
        )
        node.input[2] = dequantized
    # constants first keeps the node list topologically sorted
    nodes = [*added, *graph.node]
    del graph.node[:]
    graph.node.extend(nodes)
    return len(added)


def _drop_unused_initializers(graph: onnx.GraphProto) -> None:
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def optimized_ops(path: Path) -> Counter[str]:
    """The op types of the graph ONNX Runtime actually runs on CPU (its optimized model, as
    session() builds it), e.g. QGemm where it fused a QDQ pattern into an integer kernel."""
    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        graph = onnx.load(options.optimized_model_filepath).graph
    return Counter(node.op_type for node in graph.node)
