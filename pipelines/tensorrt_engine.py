"""TensorRT engine building when a GPU and the TensorRT Python package are present."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from pipelines.runtime import cuda_present


def availability() -> str | None:
    """None when an engine can be built, else the reason it cannot."""
    if not cuda_present():
        return "no CUDA GPU on this machine"
    if importlib.util.find_spec("tensorrt") is None:
        return "the tensorrt Python package is not installed"
    return None


def build_fp16_engine(onnx_path: Path, engine_path: Path, max_batch: int) -> None:
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    name = network.get_input(0).name
    n_features = network.get_input(0).shape[1]
    profile.set_shape(
        name, (1, n_features), (max_batch // 2 or 1, n_features), (max_batch, n_features)
    )
    config.add_optimization_profile(profile)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise RuntimeError("TensorRT failed to build the engine")
    engine_path.write_bytes(bytes(engine))
