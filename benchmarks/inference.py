"""Every ONNX variant quantize wrote vs ONNX Runtime FP32 of the trained model (and PyTorch
eager, a second column) on the default model (run after `dvc repro`):

    python benchmarks/inference.py [--batch 256] [--threads 2] [--repeats 300]

Variants are timed interleaved, round-robin, in one process with the same thread count, so
machine noise hits all of them alike; the figures are ratios."""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch
from results_file import add_record_flag, write_results

from pipelines.datamodule import load_xy
from pipelines.evaluation import ranking_metrics
from pipelines.io import read_json
from pipelines.layout import Layout
from pipelines.models.moe import ProbabilityHead
from pipelines.onnx_export import INPUT
from pipelines.runtime import session
from pipelines.training import load_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=300)
    add_record_flag(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    layout = Layout(Path("."))
    features = read_json(layout.features_file)["features"]
    x, y = load_xy(layout.split(layout.cleaned, "test"), features)
    head = ProbabilityHead(load_checkpoint(layout.checkpoint).model).eval()

    def eager(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return head(torch.from_numpy(batch)).numpy()

    predictors = {"pytorch_fp32_eager": eager}
    files = {"pytorch_fp32_eager": layout.checkpoint}
    for path in sorted(layout.onnx_dir.glob("model_*.onnx")):
        sess = session(path, threads=args.threads)
        predictors[path.stem.removeprefix("model_")] = lambda b, s=sess: s.run(None, {INPUT: b})[0]
        files[path.stem.removeprefix("model_")] = path

    batch = np.ascontiguousarray(x[: args.batch])
    times: dict[str, list[float]] = {name: [] for name in predictors}
    for _ in range(10):
        for predict in predictors.values():
            predict(batch)
    for _ in range(args.repeats):
        for name, predict in predictors.items():
            start = time.perf_counter()
            predict(batch)
            times[name].append(time.perf_counter() - start)

    base = float(np.median(times["pytorch_fp32_eager"]))
    reference = ranking_metrics(
        y, np.concatenate([eager(x[i : i + 4096]) for i in range(0, len(x), 4096)])
    )
    results = {}
    for name, predict in predictors.items():
        median = float(np.median(times[name]))
        probs = np.concatenate([predict(x[i : i + 4096]) for i in range(0, len(x), 4096)])
        quality = ranking_metrics(y, probs)
        results[name] = {
            "median_ms": median * 1000,
            "speedup_vs_pytorch_eager": base / median,
            "auprc": quality["auprc"],
            "auprc_retained": quality["auprc"] / reference["auprc"],
            "size_bytes": files[name].stat().st_size,
        }
    fp32_size, fp32_ms = results["fp32"]["size_bytes"], results["fp32"]["median_ms"]
    for name in results:
        results[name]["size_vs_onnx_fp32"] = results[name]["size_bytes"] / fp32_size
        # the fair baseline for an ONNX variant: ONNX Runtime FP32 of the trained model
        results[name]["speedup_vs_onnx_fp32"] = fp32_ms / results[name]["median_ms"]
    payload = {
        "command": (
            f"python benchmarks/inference.py --batch {args.batch} --threads {args.threads} "
            f"--repeats {args.repeats}"
        ),
        "batch": args.batch,
        "threads": args.threads,
        "repeats": args.repeats,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
        "test_rows": len(y),
        "results": results,
    }
    write_results("inference", payload, args.record)
    for name, r in results.items():
        print(
            f"{name:22s} {r['median_ms']:7.3f} ms  {r['speedup_vs_onnx_fp32']:5.2f}x ORT FP32  "
            f"{r['speedup_vs_pytorch_eager']:5.2f}x eager  "
            f"AUPRC {r['auprc']:.4f} ({r['auprc_retained']:.2%})  size {r['size_vs_onnx_fp32']:.0%}"
        )


if __name__ == "__main__":
    main()
