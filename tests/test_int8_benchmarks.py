"""benchmarks/text_int8.py and benchmarks/image_int8.py end to end at a toy width: each
quantizes as the quantize stage does, times every variant against ONNX Runtime FP32 of the
same model, and says which operators take the time (figures are recorded, never asserted as
speeds)."""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

import pytest

from tests.small import REPO

# per benchmark: its toy arguments, the batch sizes among them, its variants and the two
# variants it profiles
CASES = {
    "text_int8": (
        ["--hidden", "16", "--batches", "4", "8", "--repeats", "2"],
        {4, 8},
        {"fp32", "int8_dynamic", "int8_static"},
        {"fp32", "int8_dynamic"},
    ),
    "image_int8": (
        ["--hidden", "16", "--batches", "1", "4", "--repeats", "2", "--images", "32"],
        {1, 4},
        {"fp32", "int8_dynamic", "int8_static", "int8_dynamic_conv"},
        {"fp32", "int8_static"},
    ),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def measured(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The benchmark's name, what it wrote and what it returned."""
    name = request.param
    sys.path.insert(0, str(REPO / "benchmarks"))
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written: dict[str, Any] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            module, "write_results", lambda name, payload, record: written.update({name: payload})
        )
        results = module.main(CASES[name][0])
    return name, written, results


def test_the_benchmark_compares_int8_with_onnx_fp32(measured) -> None:
    name, written, results = measured
    _, batches, variants, profiled = CASES[name]
    assert written == {name: results}
    width = results["widths"]["16"]
    assert set(width) == variants | {"parameters", "profile"}
    assert width["fp32"]["speedup_vs_onnx_fp32"] == dict.fromkeys(batches, 1.0)
    for variant in variants - {"fp32"}:
        assert set(width[variant]["p50_ms"]) == batches
        assert all(ms > 0 for ms in width[variant]["p50_ms"].values())
        assert all(v > 0 for v in width[variant]["speedup_vs_onnx_fp32"].values())
        assert width[variant]["size_vs_fp32"] > 0
    assert set(width["profile"]) == profiled
    for variant, profile in width["profile"].items():
        shares = profile["share_by_op"]
        assert shares and 0 < sum(shares.values()) <= 1.0 + 1e-6, variant


def test_the_profile_shows_the_integer_kernels(measured) -> None:
    name, _, results = measured
    width = results["widths"]["16"]
    if name == "text_int8":
        # the INT8 graph runs integer matrix products; the FP32 graph has none
        assert all(width[v]["size_vs_fp32"] < 1.5 for v in ("int8_dynamic", "int8_static"))
        assert any(
            "Integer" in op or "Quantize" in op
            for op in width["profile"]["int8_dynamic"]["share_by_op"]
        )
        assert not any("Integer" in op for op in width["profile"]["fp32"]["share_by_op"])
    else:
        # the static graph's time is spent in integer kernels, the FP32 one's in Conv
        assert "Conv" in width["profile"]["fp32"]["share_by_op"]
        static_ops = set(width["profile"]["int8_static"]["share_by_op"])
        assert static_ops & {"QLinearConv", "QuantizeLinear"}
