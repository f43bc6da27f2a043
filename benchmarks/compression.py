"""Compression goals (README "Compression"), measured on a model as wide as a real
deployment would use, ratios in one run:

    python benchmarks/compression.py [--hidden 512 --ffn 2048 --rows 100000 --lr 1e-3]

1. The real pipeline, ingest -> ... -> evaluate, in a temporary root with the committed params
   and the model widened (`model.hidden_dim`, `model.ffn_dim`): the quantize stage builds every
   variant (INT8 dynamic/static, FP16, pruned, distilled student, QAT, and the compressed
   models' INT8 copies) from config, and evaluate scores them on the test split with each
   variant's own threshold chosen on val.
2. Every ONNX variant timed here, interleaved round-robin in one process with the same thread
   count at each batch size, so machine noise hits them alike; speed-ups are against ONNX
   Runtime FP32 of the trained model at the same batch.
3. An ONNX Runtime profile of FP32 and the fastest INT8 variant at the serving batch: time by
   operator type, which says what an INT8 speed-up is made of and what limits it.
4. A control: the trained model fine-tuned exactly as QAT fine-tunes it, without fake
   quantization, so QAT's loss can be split into the fine-tune's and quantization's.
5. Each goal with its measured value and whether it is met.
Results: benchmarks/results/compression.json with --record (else outputs/benchmarks/).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from results_file import add_record_flag, write_results

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipelines.datamodule import load_xy  # noqa: E402
from pipelines.io import read_json  # noqa: E402
from pipelines.layout import Layout  # noqa: E402
from pipelines.onnx_export import INPUT  # noqa: E402
from pipelines.runtime import session  # noqa: E402

ENV = {
    **os.environ,
    "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
    "WANDB_MODE": "disabled",
}
STAGES = ("ingest", "profile", "clean", "augment", "train", "quantize", "evaluate")
INT8 = ("int8_dynamic", "int8_static", "qat_int8")


def run_pipeline(root: Path, overrides: list[str]) -> dict[str, float]:
    """The stages as `dvc repro` runs them, each its own process; wall seconds per stage."""
    params = root / "params.yaml"
    params.write_text((REPO / "params.yaml").read_text())
    seconds = {}
    for stage in STAGES:
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", f"stages.{stage}", "--params", str(params), "--root", str(root)]
            + overrides,
            cwd=REPO,
            env=ENV,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            sys.exit(f"stage {stage} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        seconds[stage] = time.perf_counter() - start
        print(f"{stage}: {seconds[stage]:.1f} s", flush=True)
    return seconds


def interleaved_latency(
    files: dict[str, Path], x: np.ndarray, batch_sizes: list[int], threads: int, repeats: int
) -> dict[str, dict[str, dict[str, float]]]:
    """p50/p99 ms per variant and batch size, the variants timed round-robin."""
    sessions = {name: session(path, threads=threads, cpu_only=True) for name, path in files.items()}
    report: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    for size in batch_sizes:
        batch = np.ascontiguousarray(x[np.arange(size) % len(x)])
        times: dict[str, list[float]] = {name: [] for name in sessions}
        for _ in range(5):
            for sess in sessions.values():
                sess.run(None, {INPUT: batch})
        for _ in range(repeats):
            for name, sess in sessions.items():
                start = time.perf_counter()
                sess.run(None, {INPUT: batch})
                times[name].append((time.perf_counter() - start) * 1000)
        for name, values in times.items():
            p50, p99 = np.percentile(values, [50, 99])
            report[name][f"batch{size}"] = {
                "p50_ms": float(p50),
                "p99_ms": float(p99),
                "rows_per_s": size / (float(p50) / 1000),
            }
    return dict(report)


def operator_profile(path: Path, x: np.ndarray, batch: int, threads: int) -> dict[str, float]:
    """Share of ONNX Runtime's kernel time by operator type over 50 calls at `batch`."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "profile")
        sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        rows = np.ascontiguousarray(x[np.arange(batch) % len(x)])
        for _ in range(50):
            sess.run(None, {INPUT: rows})
        events = json.loads(Path(sess.end_profiling()).read_text())
    by_op: dict[str, float] = defaultdict(float)
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            by_op[event["args"]["op_name"]] += event["dur"]
    total = sum(by_op.values()) or 1.0
    return {op: dur / total for op, dur in sorted(by_op.items(), key=lambda kv: -kv[1])}


def fine_tune_control(layout: Layout, overrides: list[str]) -> dict[str, float]:
    """What QAT's fine-tune does to the model without fake quantization: the same epochs,
    learning rate and seed, the trained model fine-tuned in float. QAT's AUPRC kept, next to
    this, says how much of a loss is quantization's and how much the fine-tune's own."""
    from pipelines.compression.finetune import FineTuning, fine_tune
    from pipelines.config import load_params
    from pipelines.datamodule import TabularDataModule, model_inputs
    from pipelines.evaluation import ranking_metrics
    from pipelines.onnx_export import torch_probabilities
    from pipelines.training import load_checkpoint

    cfg = load_params(layout.root / "params.yaml", overrides)
    features = read_json(layout.features_file)["features"]
    data = model_inputs(cfg, layout, features, ("train", "val", "test"))
    x_test, y_test = data["test"]
    trained = load_checkpoint(layout.checkpoint)
    before = ranking_metrics(y_test, torch_probabilities(trained.model, x_test))["auprc"]
    dm = TabularDataModule.from_config(cfg, data["train"], data["val"], features)
    tuned, info = fine_tune(
        trained,
        dm,
        FineTuning.from_config(cfg).scaled(cfg.quantize.qat.lr_factor),
        epochs=cfg.quantize.qat.finetune_epochs,
        keep_start_if_best=False,
    )
    after = ranking_metrics(y_test, torch_probabilities(tuned.model, x_test))["auprc"]
    return {
        "trained_test_auprc": before,
        "fine_tuned_test_auprc": after,
        "auprc_kept": after / before,
        "val_auprc": info["best_val_auprc"],
    }


def goals(
    variants: dict[str, dict[str, Any]],
    latency: dict[str, dict[str, dict[str, float]]],
    sizes: dict[str, int],
    speed_batches: list[str],
) -> dict[str, dict[str, Any]]:
    """Each goal of the compression issue: the measured value and whether it is met. `variants`:
    evaluate's per-variant metrics (keys onnx_<variant>); `latency`: interleaved timings by
    variant; `speed_batches`: the batch keys a speed goal must hold at (e.g. batch32, batch256)."""

    def kept(name: str) -> float:
        return variants[f"onnx_{name}"]["auprc_retained_vs_fp32"]

    def speedup(name: str, batch: str) -> float:
        return latency["fp32"][batch]["p50_ms"] / latency[name][batch]["p50_ms"]

    present = [name for name in INT8 if name in latency]
    result: dict[str, dict[str, Any]] = {}
    if present:
        best = max(
            present, key=lambda n: (kept(n) >= 0.995, min(speedup(n, b) for b in speed_batches))
        )
        worst_speed = min(speedup(best, b) for b in speed_batches)
        result["int8_speed"] = {
            "goal": ">= 2.0x ONNX Runtime FP32 at every speed batch, >= 99.5% AUPRC kept",
            "variant": best,
            "speedup_by_batch": {b: speedup(best, b) for b in speed_batches},
            "auprc_kept": kept(best),
            "met": worst_speed >= 2.0 and kept(best) >= 0.995,
        }
        smallest = min(present, key=lambda n: sizes[n])
        result["int8_size"] = {
            "goal": "INT8 file <= 30% of FP32",
            "variant": smallest,
            "size_ratio": sizes[smallest] / sizes["fp32"],
            "met": sizes[smallest] / sizes["fp32"] <= 0.30,
        }
    if "pruned" in latency:
        worst = min(speedup("pruned", b) for b in speed_batches)
        result["pruned"] = {
            "goal": ">= 1.5x ONNX Runtime FP32 at >= 99% AUPRC kept",
            "speedup_by_batch": {b: speedup("pruned", b) for b in speed_batches},
            "auprc_kept": kept("pruned"),
            "met": worst >= 1.5 and kept("pruned") >= 0.99,
        }
    if "student" in latency:
        ratio = max(
            latency["student"][b]["p50_ms"] / latency["fp32"][b]["p50_ms"] for b in speed_batches
        )
        result["student"] = {
            "goal": ">= 98% of the teacher's AUPRC at <= 0.3x its latency",
            "latency_ratio_vs_teacher": ratio,
            "auprc_kept": kept("student"),
            "met": ratio <= 0.3 and kept("student") >= 0.98,
        }
    ptq = [n for n in ("int8_dynamic", "int8_static") if n in latency]
    if "qat_int8" in latency and ptq:
        best_ptq = max(ptq, key=kept)
        result["qat"] = {
            "goal": "QAT INT8 keeps at least as much AUPRC as the best post-training INT8",
            "qat_auprc_kept": kept("qat_int8"),
            "best_ptq": best_ptq,
            "best_ptq_auprc_kept": kept(best_ptq),
            "met": kept("qat_int8") >= kept(best_ptq),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--ffn", type=int, default=2048)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--epochs", type=int, default=3)
    # wide layers train stably at a lower rate than the default model's 3e-3
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-sizes", default="1,32,256")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--root", type=Path, help="keep the pipeline's outputs here")
    parser.add_argument("--extra", nargs="*", default=[], help="more config overrides")
    add_record_flag(parser)
    args = parser.parse_args()
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    overrides = [
        f"model.hidden_dim={args.hidden}",
        f"model.ffn_dim={args.ffn}",
        f"data.source.rows={args.rows}",
        f"trainer.max_epochs={args.epochs}",
        f"train.lr={args.lr}",
        "logger.wandb.enabled=false",
        f"evaluate.latency_batch_sizes=[{args.batch_sizes}]",
        f"evaluate.threads={args.threads}",
        *args.extra,
    ]
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        stage_seconds = run_pipeline(root, overrides)
        layout = Layout(root)
        evaluation = read_json(layout.evaluate_metrics)
        compression = read_json(layout.quantize_metrics)
        features = read_json(layout.features_file)["features"]
        x, _ = load_xy(layout.split(layout.cleaned, "test"), features)
        files = {p.stem.removeprefix("model_"): p for p in sorted(layout.onnx_dir.glob("*.onnx"))}
        latency = interleaved_latency(files, x, batch_sizes, args.threads, args.repeats)
        sizes = {name: path.stat().st_size for name, path in files.items()}
        # evaluate's session memory per variant (a fresh process each, at the serving batch)
        evaluated = read_json(layout.latency_report / "latency.json")["variants"]
        memory = {
            name: evaluated[f"onnx_{name}"]["session_memory"]["peak_bytes"]
            for name in files
            if "session_memory" in evaluated.get(f"onnx_{name}", {})
        }
        serving = f"batch{max(batch_sizes)}"
        int8 = [n for n in INT8 if n in latency]
        fastest_int8 = min(int8, key=lambda n: latency[n][serving]["p50_ms"]) if int8 else None
        control = fine_tune_control(layout, overrides)
        profiles = {
            name: operator_profile(files[name], x, max(batch_sizes), args.threads)
            for name in ("fp32", fastest_int8)
            if name
        }
    speed_batches = [f"batch{b}" for b in batch_sizes if b >= 32] or [serving]
    table = {
        name: {
            "auprc": evaluation["variants"][f"onnx_{name}"]["auprc"],
            "auprc_kept": evaluation["variants"][f"onnx_{name}"]["auprc_retained_vs_fp32"],
            "parameters": evaluation["variants"][f"onnx_{name}"].get("parameters"),
            "size_bytes": sizes[name],
            "size_vs_fp32": sizes[name] / sizes["fp32"],
            "session_peak_mib": memory[name] / 2**20 if name in memory else None,
            **{f"{b}_p50_ms": latency[name][b]["p50_ms"] for b in latency[name]},
            **{
                f"speedup_vs_onnx_fp32_{b}": latency["fp32"][b]["p50_ms"]
                / latency[name][b]["p50_ms"]
                for b in latency[name]
            },
        }
        for name in files
    }
    command = "python benchmarks/compression.py " + " ".join(
        f"--{k.replace('_', '-')} {v}"
        for k, v in (
            ("hidden", args.hidden),
            ("ffn", args.ffn),
            ("rows", args.rows),
            ("epochs", args.epochs),
            ("lr", args.lr),
            ("batch_sizes", args.batch_sizes),
            ("threads", args.threads),
            ("repeats", args.repeats),
        )
    )
    payload = {
        "command": command,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {_cpu_model()}",
        "cpu_int8_instructions": _int8_flags(),
        "model": {"hidden_dim": args.hidden, "ffn_dim": args.ffn, "overrides": overrides},
        "stage_seconds": stage_seconds,
        "test_rows": evaluation["test_rows"],
        "pytorch_fp32_auprc": evaluation["variants"]["pytorch_fp32"]["auprc"],
        "variants": table,
        "baselines": {
            name: {"auprc": m["auprc"]}
            for name, m in evaluation["variants"].items()
            if name.startswith("sklearn_")
        },
        "compression": compression["compression"],
        "latency": latency,
        "operator_time_share": profiles,
        "qat_fine_tune_without_fake_quant": control,
        "goals": goals(evaluation["variants"], latency, sizes, speed_batches),
    }
    write_results("compression", payload, args.record)
    for name, row in table.items():
        print(
            f"{name:22s} AUPRC {row['auprc']:.4f} ({row['auprc_kept']:.2%})  "
            f"{row['size_vs_fp32']:.0%} of FP32 file  "
            + "  ".join(
                f"{b}: {row[f'{b}_p50_ms']:.3f} ms {row[f'speedup_vs_onnx_fp32_{b}']:.2f}x"
                for b in latency[name]
            )
        )
    print(json.dumps(payload["goals"], indent=2))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _int8_flags() -> list[str]:
    """The CPU features ONNX Runtime's INT8 kernels choose between (VNNI: one instruction per
    u8 x s8 dot product; AVX2 alone: two, through 16-bit intermediates)."""
    try:
        flags = next(
            line
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("flags")
        ).split()
    except (OSError, StopIteration):
        return []
    wanted = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8")
    return [flag for flag in wanted if flag in flags]


if __name__ == "__main__":
    main()
