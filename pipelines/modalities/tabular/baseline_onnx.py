"""A fitted scikit-learn baseline as an ONNX graph with the model's own interface: input
`features` in the model's shape (rows, or histories whose current transaction it reads),
output `probability` (batch,), so the export folder and the server take it unchanged.

skl2onnx converts the estimator (its scaler, linear model or tree ensemble into ai.onnx.ml
operators); the few nodes around it are ours: they are the interface, which no converter knows.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from pipelines.onnx_export import INPUT, OUTPUT

# ai.onnx opset of the wrapper; skl2onnx picks the ai.onnx.ml one its converters need
OPSET = 17
ML_OPSET = 3
_FLAT, _PROBABILITIES = "flat_features", "probabilities"


@contextmanager
def _integer_missing_flags() -> Iterator[None]:
    """skl2onnx 1.20 passes a leaf's `nodes_missing_value_tracks_true` as Python False,
    which onnx >= 1.19 rejects in an ints attribute ("Expected an int, got a boolean") when it
    converts a HistGradientBoosting model; this casts the flag to int for the conversion only.
    Remove once skl2onnx casts it itself."""
    from skl2onnx.common import tree_ensemble

    original = tree_ensemble.add_node

    def add_node(*args: Any, nodes_missing_value_tracks_true: Any = 0, **kwargs: Any) -> Any:
        return original(
            *args, nodes_missing_value_tracks_true=int(nodes_missing_value_tracks_true), **kwargs
        )

    tree_ensemble.add_node = add_node
    try:
        yield
    finally:
        tree_ensemble.add_node = original


def to_onnx(model: Pipeline, sample_shape: tuple[int, ...], path: Path) -> None:
    """Write `model` (fitted on pipelines.modalities.tabular.baselines.flat_features of
    inputs shaped (batch, *sample_shape)) to `path`."""
    import onnx
    from onnx import TensorProto, helper
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    n_features = sample_shape[-1] - 1 if len(sample_shape) == 2 else sample_shape[0]
    classifier = model.steps[-1][1]
    with _integer_missing_flags():
        graph = convert_sklearn(
            model,
            initial_types=[(_FLAT, FloatTensorType([None, n_features]))],
            # plain tensors, not a list of per-row dicts (ZipMap): what ORT returns fastest
            options={id(classifier): {"zipmap": False}},
            target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET},
        ).graph
    probabilities = next(o.name for o in graph.output if "prob" in o.name)
    nodes = list(graph.node)
    constants = [helper.make_tensor("positive_column", TensorProto.INT64, [], [1])]
    if len(sample_shape) == 2:
        # a history (batch, positions, features + padding flag): its current (last) row,
        # padding flag dropped, as baselines.flat_features does
        constants += [
            helper.make_tensor("last", TensorProto.INT64, [], [-1]),
            helper.make_tensor("start", TensorProto.INT64, [1], [0]),
            helper.make_tensor("stop", TensorProto.INT64, [1], [n_features]),
            helper.make_tensor("axis", TensorProto.INT64, [1], [1]),
        ]
        nodes = [
            helper.make_node("Gather", [INPUT, "last"], ["current_row"], axis=1),
            helper.make_node("Slice", ["current_row", "start", "stop", "axis"], [_FLAT]),
            *nodes,
        ]
    else:
        nodes = [helper.make_node("Identity", [INPUT], [_FLAT]), *nodes]
    nodes.append(helper.make_node("Gather", [probabilities, "positive_column"], [OUTPUT], axis=1))
    wrapped = helper.make_graph(
        nodes,
        "baseline",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", *sample_shape])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch"])],
        initializer=[*graph.initializer, *constants],
    )
    opsets = [helper.make_opsetid("", OPSET), helper.make_opsetid("ai.onnx.ml", ML_OPSET)]
    onnx_model = helper.make_model(wrapped, opset_imports=opsets, producer_name="skl2onnx")
    onnx_model.ir_version = 9
    onnx.checker.check_model(onnx_model)
    onnx.save(onnx_model, str(path))


def parity(model: Pipeline, path: Path, x: np.ndarray, batch_sizes: list[int]) -> dict[str, float]:
    """Largest absolute difference between scikit-learn's and ONNX Runtime's positive-class
    probabilities per batch size, on `x` (the model's input shape), as for every variant."""
    from pipelines.modalities.tabular.baselines import predictor
    from pipelines.onnx_export import score_differences

    return score_differences(predictor(model), path, x, batch_sizes)
