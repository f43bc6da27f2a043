"""Which PyTorch model each ONNX variant comes from, and the memory an ONNX Runtime session of
it takes: what evaluate reports per variant beside the metrics and latency."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from pipelines.compression import variants
from pipelines.errors import PipelineError
from pipelines.onnx_export import INPUT, OUTPUT
from pipelines.session_memory import session_peak


@pytest.mark.parametrize(
    ("variant", "source", "exact"),
    [
        ("fp32", None, True),
        ("int8_dynamic", None, False),
        ("int8_static", None, False),
        ("fp16", None, False),
        ("pruned", "pruned", True),
        ("pruned_int8_dynamic", "pruned", False),
        ("student", "student", True),
        ("student_int8_dynamic", "student", False),
        ("qat_int8", "qat", False),
    ],
)
def test_each_variant_names_the_model_it_was_made_from(
    variant: str, source: str | None, exact: bool
) -> None:
    assert variants.source(variant) == source
    assert variants.is_exact_export(variant) is exact
    trained, onnx_dir = Path("models/model.ckpt"), Path("models/onnx")
    expected = trained if source is None else onnx_dir / f"{source}.ckpt"
    assert variants.checkpoint(onnx_dir, trained, variant) == expected


def _matmul_model(path: Path, width: int) -> Path:
    """features [batch, 16] @ W [16, width] -> sum: a graph whose size is its weight."""
    weight = numpy_helper.from_array(
        np.random.default_rng(0).normal(size=(16, width)).astype(np.float32), "w"
    )
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", [INPUT, "w"], ["h"]),
            helper.make_node("ReduceSum", ["h"], [OUTPUT], keepdims=0),
        ],
        "probe",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, None)],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(path))
    return path


# ONNX Runtime's own session overhead (arena, thread pool, kernel registry), measured at
# about 9 MiB here; the onnx import and the model file read before the reset stay out of it
SMALL_LIMIT = 16 * 2**20


def test_a_sessions_peak_memory_grows_with_the_weights_it_holds(tmp_path: Path) -> None:
    batch = np.ones((8, 16), dtype=np.float32)
    small = session_peak(_matmul_model(tmp_path / "small.onnx", 16), batch, threads=1)
    # 16 x 1M float32 weights: 64 MiB that the session must hold
    large = session_peak(_matmul_model(tmp_path / "large.onnx", 1 << 20), batch, threads=1)
    assert small["method"] == "VmHWM after reset"  # Linux: the session's own peak
    assert 0 < small["peak_bytes"] < SMALL_LIMIT
    assert 64 * 2**20 < large["peak_bytes"] - small["peak_bytes"] < 3 * 64 * 2**20


def test_a_model_onnx_runtime_cannot_load_fails_naming_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(PipelineError, match="broken.onnx: measuring the ONNX Runtime session"):
        session_peak(broken, np.ones((1, 16), dtype=np.float32), threads=1)


def test_variants_are_timed_round_robin_with_the_same_report_as_one_at_a_time() -> None:
    from pipelines.evaluation import interleaved_latency

    calls: list[str] = []

    def variant(name: str, pause: float):
        def predict(batch: np.ndarray) -> np.ndarray:
            calls.append(name)
            time.sleep(pause)
            return batch[:, 0]

        return predict

    x = np.ones((10, 3), dtype=np.float32)
    report = interleaved_latency(
        {"slow": variant("slow", 0.004), "fast": variant("fast", 0.0)}, x, [1, 4], repeats=5
    )
    # 3 warm-up rounds and 5 timed rounds per batch size, the two variants alternating
    assert calls == ["slow", "fast"] * 16
    for name in ("slow", "fast"):
        assert set(report[name]) == {"batch1", "batch4", "throughput_rows_per_s"}
        assert set(report[name]["batch4"]) == {"p50_ms", "p95_ms", "p99_ms"}
    assert report["slow"]["batch1"]["p50_ms"] > report["fast"]["batch1"]["p50_ms"]
    assert report["fast"]["throughput_rows_per_s"] == pytest.approx(
        4 / (report["fast"]["batch4"]["p50_ms"] / 1000)
    )
