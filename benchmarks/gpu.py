"""Training on a CUDA GPU through the project's own Lightning code, one strategy x precision
per process (DeepSpeed keeps process-wide state):

    python benchmarks/gpu.py [--rows 200000] [--batch-size 2048] [--epochs 1] [--record]

Each run trains the MoE row model (or its dense counterpart with the same active parameters,
for ZeRO-3, which DeepSpeed refuses for its native MoE layer) at a scaled size where the
optimizer state is gigabytes, for `--epochs` epochs, and reports:

- median ms per optimizer step after `--warmup` steps (CUDA synchronised at each step end, so
  a step's time is its GPU work, not the launch), rows per second;
- peak GPU memory allocated and reserved by PyTorch in that process (ZeRO's partitions, the
  optimizer state and the activations of the largest step);
- validation AUPRC/AUROC at the end of training, so a faster precision is compared at its metric.

The ratios bf16-mixed / 32-true are within one strategy, same data, same steps. The ONNX Runtime
providers and whether TensorRT imports are recorded beside the figures.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# hidden width, expert width, experts, blocks: 8 experts of 1024 -> 4096 -> 1024 in each of
# 2 blocks is 134M expert parameters (2.1 GB of fp32 weights, gradients and AdamW state)
SCALE = {
    "model.hidden_dim": 1024,
    "model.ffn_dim": 4096,
    "model.num_experts": 8,
    "model.num_blocks": 2,
}
# --smoke: the same code path on a CPU at a toy size, so CI checks the script (no figures)
SMOKE_SCALE = {
    "model.hidden_dim": 32,
    "model.ffn_dim": 64,
    "model.num_experts": 4,
    "model.num_blocks": 1,
}

# (strategy, model): ZeRO-3 and its offload take the dense model (DeepSpeed refuses its
# native MoE layer under stage 3), so the dense model also runs under `auto` to compare with
RUNS: list[tuple[str, str, str]] = [
    ("auto", "moe_mlp", "32-true"),
    ("auto", "moe_mlp", "bf16-mixed"),
    ("deepspeed_zero2", "moe_mlp", "32-true"),
    ("deepspeed_zero2", "moe_mlp", "bf16-mixed"),
    ("deepspeed_zero1", "moe_mlp", "bf16-mixed"),
    ("auto", "dense_mlp", "bf16-mixed"),
    ("deepspeed_zero3", "dense_mlp", "bf16-mixed"),
    ("auto", "dense_mlp", "32-true"),
    ("deepspeed_zero3_offload", "dense_mlp", "bf16-mixed"),
]


class StepTimer(Callback):
    """Wall time of each optimizer step with the GPU synchronised at its end, and peak memory."""

    def __init__(self, out: str, warmup: int = 10) -> None:
        self.out = Path(out)
        self.warmup = warmup
        self.ends: list[float] = []
        self.batch_rows = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.ends.append(time.perf_counter())
        self.batch_rows = len(batch[1])

    def on_train_end(self, trainer, pl_module) -> None:
        steps = [b - a for a, b in zip(self.ends, self.ends[1:], strict=False)][self.warmup :]
        step_ms = 1000 * statistics.median(steps) if steps else float("nan")
        cuda = torch.cuda.is_available()
        self.out.write_text(
            json.dumps(
                {
                    "timed_steps": len(steps),
                    "step_ms_median": step_ms,
                    "step_ms_p90": 1000 * sorted(steps)[int(0.9 * (len(steps) - 1))]
                    if steps
                    else float("nan"),
                    "rows_per_s": 1000 * self.batch_rows / step_ms if steps else float("nan"),
                    "peak_allocated_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else 0,
                    "peak_reserved_gib": torch.cuda.max_memory_reserved() / 2**30 if cuda else 0,
                }
            )
        )


def compose(
    root: Path, strategy: str, model: str, precision: str, overrides: list[str], smoke: bool
):
    from pipelines.compose import compose_params
    from pipelines.config import load_params

    params = root / f"params_{strategy}_{model}_{precision}.yaml"
    trainer = "trainer=cpu" if smoke else "trainer=gpu"
    compose_params(params, [f"strategy={strategy}", f"model={model}", trainer])
    return load_params(params, [f"trainer.precision={precision}", *overrides])


def common_overrides(args: argparse.Namespace) -> list[str]:
    return [
        f"data.source.rows={args.rows}",
        f"train.batch_size={args.batch_size}",
        f"trainer.max_epochs={args.epochs}",
        *(["data.source.n_days=30"] if args.smoke else []),
        "callbacks.early_stopping.enabled=false",
        "logger.wandb.enabled=false",
        "trainer.enable_progress_bar=false",
    ]


def model_overrides(model: str, smoke: bool) -> list[str]:
    scale = dict(SMOKE_SCALE if smoke else SCALE)
    if model == "dense_mlp":  # same active parameters per row as top-2 of the experts
        scale["model.ffn_dim"] = 2 * scale["model.ffn_dim"]
        scale.pop("model.num_experts")
    return [f"{k}={v}" for k, v in scale.items()]


def worker(args: argparse.Namespace) -> None:
    # benchmarks/training.py builds the data module the train stage builds; reused as is
    from training import datamodule

    from pipelines.layout import Layout
    from pipelines.training import fit_classifier

    root = Path(args.root)
    timing = root / f"timing_{args.strategy}_{args.model}_{args.precision}.json"
    cfg = compose(
        root,
        args.strategy,
        args.model,
        args.precision,
        [
            *common_overrides(args),
            *model_overrides(args.model, args.smoke),
            "+callbacks.step_timer._target_=gpu.StepTimer",
            f"+callbacks.step_timer.out={timing}",
            f"+callbacks.step_timer.warmup={args.warmup}",
        ],
        args.smoke,
    )
    dm = datamodule(cfg, Layout(root))
    work = Path(tempfile.mkdtemp(dir=root))
    start = time.perf_counter()
    result = fit_classifier(cfg, dm, work)
    seconds = time.perf_counter() - start
    # the validation metric Lightning computed on the GPU at the last epoch end (scoring the
    # validation split again on the CPU would cost more than the training at this size)
    last_epoch = result.history[-1]
    parameters = sum(p.numel() for p in result.module.model.parameters())
    shutil.rmtree(work)  # gigabytes of checkpoints per run
    payload = {
        "strategy": args.strategy,
        "model": args.model,
        "precision": args.precision,
        "parameters": parameters,
        "fit_seconds": seconds,
        **json.loads(timing.read_text()),
        "val_auprc": last_epoch["val_auprc"],
        "val_auroc": last_epoch["val_auroc"],
    }
    Path(args.out).write_text(json.dumps(payload))


def prepare(root: Path, args: argparse.Namespace) -> None:
    from pipelines.layout import Layout
    from stages import augment, clean, ingest, profile

    cfg = compose(root, "auto", "moe_mlp", "32-true", common_overrides(args), args.smoke)
    for stage in (ingest, profile, clean, augment):
        stage.run(cfg, Layout(root))


def inference_stack() -> dict[str, Any]:
    import onnxruntime as ort

    return {
        "onnxruntime": ort.__version__,
        "onnxruntime_providers": ort.get_available_providers(),
        "tensorrt_importable": importlib.util.find_spec("tensorrt") is not None,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--timeout", type=int, default=120, help="seconds per run")
    parser.add_argument(
        "--runs",
        nargs="*",
        metavar="STRATEGY,MODEL,PRECISION",
        help="runs instead of the default list, e.g. deepspeed_zero2,moe_mlp,bf16-mixed",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="toy size on the CPU: checks the script, no figures"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--strategy", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--precision", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    from results_file import add_record_flag

    add_record_flag(parser)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    if not torch.cuda.is_available() and not args.smoke:
        sys.exit("benchmarks/gpu.py: needs a CUDA GPU (torch.cuda.is_available() is False)")
    runs = [tuple(r.split(",")) for r in args.runs] if args.runs else RUNS
    if not runs or any(len(r) != 3 for r in runs):
        sys.exit(
            f"benchmarks/gpu.py: --runs takes STRATEGY,MODEL,PRECISION triples, got {args.runs}"
        )
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        prepare(root, args)
        print(f"data prepared in {time.perf_counter() - started:.0f} s", flush=True)
        for strategy, model, precision in runs:
            out = root / f"result_{strategy}_{model}_{precision}.json"
            command = [
                sys.executable,
                str(Path(__file__)),
                "--worker",
                "--root",
                str(root),
                "--strategy",
                strategy,
                "--model",
                model,
                "--precision",
                precision,
                "--out",
                str(out),
                "--rows",
                str(args.rows),
                "--batch-size",
                str(args.batch_size),
                "--warmup",
                str(args.warmup),
                "--epochs",
                str(args.epochs),
                *(["--smoke"] if args.smoke else []),
            ]
            began = time.perf_counter()
            try:
                done = subprocess.run(
                    command,
                    capture_output=True,
                    text=True,
                    timeout=args.timeout,
                    env={**os.environ, "WANDB_MODE": "disabled"},
                )
                failure = None if out.exists() else (done.stderr or done.stdout)[-1500:]
            except subprocess.TimeoutExpired:
                failure = f"timed out after {args.timeout} s"
            row: dict[str, Any] = (
                json.loads(out.read_text())
                if failure is None
                else {
                    "strategy": strategy,
                    "model": model,
                    "precision": precision,
                    "error": failure,
                }
            )
            row["process_seconds"] = time.perf_counter() - began
            results.append(row)
            print(json.dumps(row), flush=True)
            # after every run: a run that outlasts the caller's time limit keeps the others
            save(args, results)
    print(table(results))


def save(args: argparse.Namespace, results: list[dict[str, Any]]) -> None:
    from results_file import write_results

    payload = {
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (smoke)",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "scale": SCALE,
        "rows": args.rows,
        "batch_size": args.batch_size,
        "warmup_steps": args.warmup,
        "runs": results,
        "bf16_over_fp32": bf16_ratios(results),
        "inference_stack": inference_stack(),
        "command": "python benchmarks/gpu.py " + " ".join(sys.argv[1:]),
    }
    if args.smoke:
        Path(args.out or "gpu_smoke.json").write_text(json.dumps(payload, indent=2))
    else:
        write_results("gpu", payload, args.record)


def bf16_ratios(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """fp32 step time / bf16 step time (the speed-up) and the memory ratio, per strategy."""
    by_key = {(r["strategy"], r["model"], r["precision"]): r for r in results if "error" not in r}
    ratios = {}
    for (strategy, model, precision), bf16 in by_key.items():
        fp32 = by_key.get((strategy, model, "32-true"))
        if precision == "bf16-mixed" and fp32 is not None:
            ratios[f"{strategy}/{model}"] = {
                "speedup": fp32["step_ms_median"] / bf16["step_ms_median"],
                "peak_allocated_ratio": bf16["peak_allocated_gib"] / fp32["peak_allocated_gib"]
                if fp32["peak_allocated_gib"]
                else float("nan"),
                "val_auprc_fp32": fp32["val_auprc"],
                "val_auprc_bf16": bf16["val_auprc"],
            }
    return ratios


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| strategy | model | precision | ms/step | rows/s | peak GiB | val AUPRC |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        if "error" in r:
            reason = " ".join(r["error"].split())[-160:]
            lines.append(
                f"| {r['strategy']} | {r['model']} | {r['precision']} | failed: {reason} | | | |"
            )
            continue
        lines.append(
            f"| {r['strategy']} | {r['model']} | {r['precision']} | {r['step_ms_median']:.1f} "
            f"| {r['rows_per_s']:,.0f} | {r['peak_allocated_gib']:.2f} | {r['val_auprc']:.4f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
