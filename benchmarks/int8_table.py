"""What the INT8 benchmarks (text_int8.py, image_int8.py) report alike: per variant its size
and median latency, each against ONNX Runtime FP32 of the same model, and one line a width."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def variant_rows(
    paths: dict[str, Path], timings: dict[str, dict[str, Any]], batches: list[int]
) -> dict[str, dict[str, Any]]:
    """Per variant (fp32 among them): file size, its share of FP32's, the median ms at each
    batch size (pipelines.evaluation.interleaved_latency's `timings`) and the speedup over
    FP32 at each."""
    fp32_size = paths["fp32"].stat().st_size
    return {
        name: {
            "size_bytes": path.stat().st_size,
            "size_vs_fp32": path.stat().st_size / fp32_size,
            "p50_ms": {b: timings[name][f"batch{b}"]["p50_ms"] for b in batches},
            "speedup_vs_onnx_fp32": {
                b: timings["fp32"][f"batch{b}"]["p50_ms"] / timings[name][f"batch{b}"]["p50_ms"]
                for b in batches
            },
        }
        for name, path in paths.items()
    }


def print_speedups(
    widths: dict[str, dict[str, Any]], names: tuple[str, ...], batches: list[int]
) -> None:
    for hidden, r in widths.items():
        for name in names:
            speed = ", ".join(f"b{b} {r[name]['speedup_vs_onnx_fp32'][b]:.2f}x" for b in batches)
            print(f"hidden {hidden}: {name} size {r[name]['size_vs_fp32']:.1%} of FP32; {speed}")
