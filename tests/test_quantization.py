"""INT8 with ONNX Runtime's quantizer: which layers stay FP32, and calibration that works with
any number of rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from pipelines.models.build import build_model
from pipelines.onnx_export import INPUT, export_onnx
from pipelines.quantization import (
    ArrayReader,
    dynamic_int8,
    fp16,
    input_projection_nodes,
    preprocess,
    router_nodes,
    static_int8,
)
from pipelines.runtime import session
from pipelines.schema.compression import DynamicQuantConfig, StaticQuantConfig
from pipelines.schema.model import ModelConfig

N_NUMERIC, N_LEVELS = 6, 10


def features(rows: int, seed: int) -> np.ndarray:
    """Standard-normal numerics and a one-hot categorical with one rare level (1% of rows),
    as a credit table's `purpose` column has."""
    rng = np.random.default_rng(seed)
    level = rng.choice(N_LEVELS, rows, p=[0.3, 0.2, 0.15, 0.1, 0.1, 0.05, 0.04, 0.03, 0.02, 0.01])
    return np.hstack([rng.normal(size=(rows, N_NUMERIC)), np.eye(N_LEVELS)[level]]).astype(
        np.float32
    )


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    x = features(4000, 0)
    torch.manual_seed(0)
    net = build_model(x.shape[1], ModelConfig(), x.mean(0).tolist(), x.std(0).tolist()).eval()
    folder = tmp_path_factory.mktemp("onnx")
    export_onnx(net, (x.shape[1],), folder / "fp32.onnx", opset=17)
    preprocess(folder / "fp32.onnx", folder / "prepared.onnx")
    return folder / "prepared.onnx", features(2000, 1)


def scores(path: Path, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {INPUT: x})[0]


def test_the_input_projection_is_the_first_matrix_product_and_not_a_router(prepared) -> None:
    path, _ = prepared
    first = input_projection_nodes(path)
    assert first == ["/model/inp/inp.0/Gemm"]
    assert not set(first) & set(router_nodes(path))


SEQ_LEN = 6


def exported_sequence_model(name: str, folder: Path) -> Path:
    """A small sequence model as the quantize stage sees it: exported, then pre-processed."""
    torch.manual_seed(0)
    cfg = ModelConfig(
        name=name, hidden_dim=16, ffn_dim=32, num_blocks=2, num_heads=2, seq_len=SEQ_LEN
    )
    net = build_model(N_NUMERIC, cfg, [0.0] * N_NUMERIC, [1.0] * N_NUMERIC).eval()
    export_onnx(net, (SEQ_LEN, N_NUMERIC + 1), folder / "fp32.onnx", opset=17)
    preprocess(folder / "fp32.onnx", folder / "prepared.onnx")
    return folder / "prepared.onnx"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # standardise, re-attach the padding flag (Slice, Concat ...), then the input Linear;
        # the attention blocks' projections lie past it and are not input layers
        ("dense_transformer", ["/model/inp/inp.0/MatMul"]),
        ("moe_transformer", ["/model/inp/inp.0/MatMul"]),
        # the input goes into an LSTM (not quantized): no matrix product reads it first, and
        # the attention-score and head layers behind the LSTM are not input layers
        ("bilstm_attention", []),
    ],
)
def test_only_the_first_projection_after_the_input_preprocessing_is_an_input_layer(
    name: str, expected: list[str], tmp_path: Path
) -> None:
    path = exported_sequence_model(name, tmp_path)
    assert input_projection_nodes(path) == expected


def test_keeping_the_input_projection_fp32_removes_most_of_the_int8_error(
    prepared, tmp_path: Path
) -> None:
    path, x = prepared
    reference = scores(path, x)
    errors = {}
    for keep in (False, True):
        out = tmp_path / f"keep_{keep}.onnx"
        dynamic_int8(path, out, DynamicQuantConfig(), keep_input_fp32=keep)
        errors[keep] = float(np.abs(scores(out, x) - reference).mean())
    assert errors[True] < 0.5 * errors[False], errors


def test_calibration_batches_have_one_size_whatever_the_row_count() -> None:
    reader = ArrayReader(np.arange(1000 * 3, dtype=np.float32).reshape(1000, 3), batch_size=256)
    shapes = []
    while (batch := reader.get_next()) is not None:
        shapes.append(batch[INPUT].shape)
    assert shapes == [(256, 3)] * 4
    small = ArrayReader(np.ones((40, 3), dtype=np.float32), batch_size=256)
    assert small.get_next()[INPUT].shape == (40, 3)


@pytest.mark.parametrize("method", ["minmax", "entropy", "percentile"])
def test_static_int8_calibrates_on_rows_that_are_not_a_multiple_of_the_batch(
    prepared, tmp_path: Path, method: str
) -> None:
    path, x = prepared
    out = tmp_path / "static.onnx"
    static_int8(
        path, out, x[:1000], StaticQuantConfig(calibration_method=method), keep_input_fp32=True
    )
    assert np.abs(scores(out, x) - scores(path, x)).mean() < 0.02


@pytest.mark.parametrize("name", ["moe_mlp", "moe_transformer"])
def test_fp16_keeps_raw_features_beyond_fp16_range_and_matches_fp32(
    name: str, tmp_path: Path
) -> None:
    """FP16's largest value is 65504; raw inputs such as seconds since the previous
    transaction reach millions. The graph standardises them in FP32, then runs in FP16."""
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    if name == "moe_mlp":
        x = features(4000, 0)
        x[:, 0] = rng.uniform(0, 5e6, len(x))  # seconds, up to 58 days
        shape, n_features = (x.shape[1],), x.shape[1]
        mean, std = x.mean(0).tolist(), x.std(0).tolist()
        net = build_model(n_features, ModelConfig(), mean, std).eval()
    else:
        x = rng.normal(size=(512, SEQ_LEN, N_NUMERIC + 1)).astype(np.float32)
        x[..., 0] *= 1e6
        x[..., -1] = 1.0  # every position a real transaction
        shape, cfg = (
            (SEQ_LEN, N_NUMERIC + 1),
            ModelConfig(
                name=name, hidden_dim=16, ffn_dim=32, num_blocks=2, num_heads=2, seq_len=SEQ_LEN
            ),
        )
        mean, std = [0.0] * N_NUMERIC, [1e6] + [1.0] * (N_NUMERIC - 1)
        net = build_model(N_NUMERIC, cfg, mean, std).eval()
    export_onnx(net, shape, tmp_path / "fp32.onnx", opset=17)
    fp16(tmp_path / "fp32.onnx", tmp_path / "fp16.onnx")
    halves = [
        t
        for t in onnx.load(str(tmp_path / "fp16.onnx")).graph.initializer
        if t.data_type == onnx.TensorProto.FLOAT16
    ]
    assert halves
    # through the project's sessions (pipelines.runtime), which every stage and the server use
    got, expected = (
        session(tmp_path / name, cpu_only=True).run(None, {INPUT: x})[0]
        for name in ("fp16.onnx", "fp32.onnx")
    )
    assert got.dtype == np.float32 and np.isfinite(got).all()
    # an untrained router has near-ties, so a rare row may take another expert in FP16: the
    # bulk of the rows is what shows the arithmetic
    error = np.abs(got - expected)
    assert np.percentile(error, 99) < 2e-3 and error.mean() < 5e-4, error.max()
