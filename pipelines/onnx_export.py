"""ONNX export of the classifier and the parity check NeMo-style exporters always run."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pipelines.errors import PipelineError
from pipelines.models.moe import ProbabilityHead, exportable
from pipelines.runtime import session

INPUT, OUTPUT = "features", "probability"


def export_onnx(model: nn.Module, sample_shape: tuple[int, ...], path: Path, opset: int) -> None:
    """TorchScript-based exporter (dynamo=False) with a dynamic batch axis; MoE blocks take the
    tensor-op routing path so the expert capacity follows the batch size."""
    example = torch.zeros(8, *sample_shape)
    if len(sample_shape) == 2:
        example[..., -1] = 1.0  # sequences: mark the rows real, so attention sees keys
    export_graph(ProbabilityHead(model).eval(), model, example, path, opset)


def export_graph(
    head: nn.Module,
    model: nn.Module,
    example: torch.Tensor,
    path: Path,
    opset: int,
    input_name: str = INPUT,
    output_name: str = OUTPUT,
) -> None:
    """`head` (the probabilities of `model`) exported by the TorchScript-based exporter
    (dynamo=False) from one traced `example`, with a dynamic batch axis on its one input and
    output; `model`'s MoE blocks take the tensor-op routing path while it traces, so the
    expert capacity follows the batch size."""
    with warnings.catch_warnings(), exportable(model), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            head,
            (example,),
            str(path),
            dynamo=False,
            input_names=[input_name],
            output_names=[output_name],
            dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
            opset_version=opset,
        )


def embed_metadata(path: Path, properties: dict[str, str]) -> None:
    """Write `properties` into the model's metadata_props (replacing same-named entries)."""
    import onnx

    model = onnx.load(str(path))
    kept = [p for p in model.metadata_props if p.key not in properties]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in properties.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))


def torch_probabilities(model: nn.Module, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    head = ProbabilityHead(model).eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            out.append(head(torch.from_numpy(x[start : start + batch_size])).numpy())
    return np.concatenate(out) if out else np.empty(0, dtype=np.float32)


def parity_check(
    model: nn.Module, onnx_path: Path, x: np.ndarray, batch_sizes: list[int], atol: float
) -> dict[str, float]:
    """Max |ONNX - PyTorch| per batch size; raises when any exceeds `atol`. Each batch is
    scored as one call on both sides, so MoE capacity is exercised at that batch size."""
    head = ProbabilityHead(model).eval()

    def reference(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return head(torch.from_numpy(batch)).numpy()

    diffs = score_differences(reference, onnx_path, x, batch_sizes)
    check_parity(onnx_path, diffs, atol, "PyTorch")
    return diffs


def score_differences(
    reference: Callable[[np.ndarray], np.ndarray],
    onnx_path: Path,
    x: np.ndarray,
    batch_sizes: list[int],
) -> dict[str, float]:
    """Max |ONNX - reference| per batch size, the graph's scores against what it was made
    from (PyTorch, or scikit-learn for a baseline). A batch larger than the rows there are (a
    small table's test split) cycles through them: the point is the graph at that batch
    size, not new rows."""
    if len(x) == 0:
        raise PipelineError(f"{onnx_path}: parity check needs at least one row, got none")
    sess = session(onnx_path)
    diffs: dict[str, float] = {}
    for size in batch_sizes:
        batch = np.ascontiguousarray(x[np.arange(size) % len(x)])
        got = sess.run(None, {INPUT: batch})[0]
        diffs[str(size)] = float(np.max(np.abs(got - reference(batch))))
    return diffs


def check_parity(onnx_path: Path, diffs: dict[str, float], atol: float, against: str) -> None:
    worst = max(diffs.values())
    if not worst <= atol:
        raise PipelineError(
            f"{onnx_path}: ONNX output diverges from {against}: max abs diff {worst:.3g} > "
            f"atol {atol} (per batch size: {diffs})"
        )
