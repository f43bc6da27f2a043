"""ONNX Runtime sessions with execution providers chosen by what the machine has, so a
CPU-only machine never asks for CUDA (which would log provider load errors)."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort


def cuda_present() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:  # pragma: no cover - torch is a dependency
        return False


def providers() -> list[str]:
    available = ort.get_available_providers()
    chosen = (
        ["CUDAExecutionProvider"] if cuda_present() and "CUDAExecutionProvider" in available else []
    )
    return [*chosen, "CPUExecutionProvider"]


def session(
    path: Path, threads: int = 0, cpu_only: bool = False, fp16_weights: bool | None = None
) -> ort.InferenceSession:
    """`fp16_weights`: whether the graph holds FP16 weights, when the caller knows (None: read
    the file to find out)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # idle ORT threads spin-wait by default and steal the cores from whatever runs next
    # (PyTorch, another session), which skews any side-by-side measurement
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if has_fp16_weights(path) if fp16_weights is None else fp16_weights:
        # measured (onnxruntime 1.31, CPU): the "all" level's layout transformations crash the
        # process (segfault) while building the session of an FP16 Transformer graph; they
        # only re-lay out convolutions, which these models have none of
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    chosen = ["CPUExecutionProvider"] if cpu_only else providers()
    return ort.InferenceSession(str(path), sess_options=options, providers=chosen)


def has_fp16_weights(path: Path) -> bool:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return any(t.data_type == onnx.TensorProto.FLOAT16 for t in graph.initializer)
