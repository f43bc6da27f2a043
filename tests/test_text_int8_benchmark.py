"""benchmarks/text_int8.py end to end at a toy width: it quantizes as the quantize stage does,
times every variant against ONNX Runtime FP32 of the same model, and says which operators
take the time (figures are recorded, never asserted as speeds)."""

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
    spec = importlib.util.spec_from_file_location("text_int8", REPO / "benchmarks" / "text_int8.py")
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
    results = benchmark.main(["--hidden", "16", "--batches", "4", "8", "--repeats", "2"])
    assert written == {"text_int8": results}
    width = results["widths"]["16"]
    assert set(width) == {"parameters", "fp32", "int8_dynamic", "int8_static", "profile"}
    assert width["fp32"]["speedup_vs_onnx_fp32"] == {4: 1.0, 8: 1.0}
    for name in ("int8_dynamic", "int8_static"):
        assert set(width[name]["p50_ms"]) == {4, 8}
        assert all(v > 0 for v in width[name]["speedup_vs_onnx_fp32"].values())
        assert 0 < width[name]["size_vs_fp32"] < 1.5
    for name, profile in width["profile"].items():
        shares = profile["share_by_op"]
        assert shares and 0 < sum(shares.values()) <= 1.0 + 1e-6, name
    # the INT8 graph runs integer matrix products; the FP32 graph has none
    assert any(
        "Integer" in op or "Quantize" in op
        for op in width["profile"]["int8_dynamic"]["share_by_op"]
    )
    assert not any("Integer" in op for op in width["profile"]["fp32"]["share_by_op"])
