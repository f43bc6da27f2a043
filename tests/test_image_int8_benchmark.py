"""benchmarks/image_int8.py end to end at a toy width: it quantizes as the quantize stage does,
times every variant against ONNX Runtime FP32 of the same model, and says which operators take
the time (figures are recorded, never asserted as speeds)."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import Any

import pytest

from tests.small import REPO


@pytest.fixture(scope="module")
def benchmark() -> ModuleType:
    sys.path.insert(0, str(REPO / "benchmarks"))
    path = REPO / "benchmarks" / "image_int8.py"
    spec = importlib.util.spec_from_file_location("image_int8", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_compares_int8_with_onnx_fp32_and_profiles_the_operators(
    benchmark: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: dict[str, Any] = {}
    monkeypatch.setattr(
        benchmark, "write_results", lambda name, payload, record: written.update({name: payload})
    )
    argv = ["--hidden", "16", "--batches", "1", "4", "--repeats", "2", "--images", "32"]
    results = benchmark.main(argv)
    assert written == {"image_int8": results}
    width = results["widths"]["16"]
    variants = {"fp32", "int8_dynamic", "int8_static", "int8_dynamic_conv"}
    assert set(width) == variants | {"parameters", "profile"}
    assert width["fp32"]["speedup_vs_onnx_fp32"] == {1: 1.0, 4: 1.0}
    for name in variants - {"fp32"}:
        assert set(width[name]["p50_ms"]) == {1, 4}
        assert all(ms > 0 for ms in width[name]["p50_ms"].values())
        assert width[name]["size_vs_fp32"] > 0
    # the static graph's time is spent in integer kernels, the FP32 one's in Conv
    assert "Conv" in width["profile"]["fp32"]["share_by_op"]
    assert set(width["profile"]["int8_static"]["share_by_op"]) & {"QLinearConv", "QuantizeLinear"}
