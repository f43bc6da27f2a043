"""What the INT8 benchmarks (text_int8.py, image_int8.py) measure and report alike: every
variant timed round-robin in one process on the same inputs, per variant its size and median
latency, each against ONNX Runtime FP32 of the same model, and one line a width."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from results_file import add_record_flag


def int8_arguments(description: str, batches: list[int]) -> argparse.ArgumentParser:
    """The options both INT8 benchmarks take: widths, batch sizes (default `batches`),
    timed rounds, ORT threads and --record."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--batches", type=int, nargs="+", default=batches)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    add_record_flag(parser)
    return parser


def variant_rows(
    paths: dict[str, Path],
    feed: Callable[[np.ndarray], dict[str, np.ndarray]],
    x: np.ndarray,
    batches: list[int],
    repeats: int,
    threads: int,
) -> dict[str, dict[str, Any]]:
    """Per variant (fp32 among them): file size, its share of FP32's, the median ms at each
    batch size and the speedup over FP32 at each. Every variant runs on CPU with `threads`,
    timed round-robin (pipelines.evaluation.interleaved_latency) on batches of `x`, which
    `feed` makes into the graph's inputs (the feeding timed too, as a scorer pays it)."""
    # imported here: the benchmark puts the repository on sys.path after importing this file
    from pipelines.core.onnx_variants import PROBABILITIES
    from pipelines.evaluation import interleaved_latency
    from pipelines.runtime import session

    sessions = {name: session(path, threads, cpu_only=True) for name, path in paths.items()}
    predictors = {
        name: (lambda batch, s=s: s.run([PROBABILITIES], feed(batch))[0])
        for name, s in sessions.items()
    }
    timings = interleaved_latency(predictors, x, batches, repeats)
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
