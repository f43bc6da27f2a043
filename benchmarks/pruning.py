"""How much wall time pruning saves in an Optuna sweep of the real pipeline:

    python benchmarks/pruning.py [--trials 16] [--epochs 6] [--rows 10000] [--pruner median]

Two sweeps of `hparams_search=finance_risk_optuna` on the same budget (n_trials), the same
seeded TPE sampler and the same small simulated data, one after the other on this machine:
unpruned (`hydra/sweeper/pruner=none`) and pruned. For each: total wall time, the best value,
and the wall time (from the sweep's first trial start, read from the study's trial timestamps)
at which the best-so-far first reached the unpruned sweep's best value; exactly and within 1%.
Early stopping is off so an unpruned trial runs all its epochs. Results go to
benchmarks/results/pruning.json. The goal (GOALS.md): reach the same best in <= 0.5x the time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
from results_file import add_record_flag, write_results

REPO = Path(__file__).resolve().parent.parent
ENV = {
    **os.environ,
    "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
    "WANDB_MODE": "disabled",
}


def run_sweep(root: Path, name: str, pruner: list[str], args: argparse.Namespace) -> dict:
    storage = f"sqlite:///{root}/{name}.db"
    command = [
        sys.executable, "train.py", "-m", "hparams_search=finance_risk_optuna",
        f"data.source.rows={args.rows}", "data.source.n_days=30",
        f"trainer.max_epochs={args.epochs}", "callbacks.early_stopping.enabled=false",
        "logger.wandb.enabled=false",
        f"hydra.sweeper.n_trials={args.trials}", f"hydra.sweeper.study_name={name}",
        f"hydra.sweeper.storage={storage}", f"hydra.sweep.dir={root / name}",
        f"pipeline.data_cache={root / 'cache'}", "hydra.sweeper.plots=false",
        *pruner,
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, env=ENV, check=True, capture_output=True)
    wall = time.perf_counter() - start
    study = optuna.load_study(study_name=name, storage=storage)
    trials = sorted(study.trials, key=lambda t: t.number)
    t0 = min(t.datetime_start for t in trials)
    curve, best = [], float("-inf")
    for t in sorted(trials, key=lambda t: t.datetime_complete):
        if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None:
            best = max(best, t.value)
        curve.append(((t.datetime_complete - t0).total_seconds(), best))
    return {
        "wall_s": round(wall, 1),
        "trials_wall_s": round(curve[-1][0], 1),
        "best_value": study.best_value,
        "best_params": study.best_params,
        "states": {
            s: sum(t.state.name == s for t in trials) for s in ("COMPLETE", "PRUNED", "FAIL")
        },
        "epochs_trained": sum(len(t.intermediate_values) for t in trials),
        "best_so_far": [(round(s, 1), v) for s, v in curve],
    }


def time_to_reach(result: dict, target: float) -> float | None:
    return next((s for s, v in result["best_so_far"] if v >= target), None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--rows", type=int, default=10000)
    parser.add_argument("--pruner", default="median", help="median | successive_halving")
    add_record_flag(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # warm the data cache first, so neither sweep pays for the data stages
        run_sweep(
            root,
            "warmup",
            ["hydra/sweeper/pruner=none", "hydra.sweeper.n_trials=1"],
            argparse.Namespace(**{**vars(args), "trials": 1, "epochs": 1}),
        )
        unpruned = run_sweep(root, "unpruned", ["hydra/sweeper/pruner=none"], args)
        pruned = run_sweep(root, "pruned", [f"hydra/sweeper/pruner={args.pruner}"], args)
    target = unpruned["best_value"]
    reach = {
        name: (time_to_reach(unpruned, level), time_to_reach(pruned, level))
        for name, level in (("exact", target), ("within_1pct", 0.99 * target))
    }
    summary = {
        "command": "python benchmarks/pruning.py " + " ".join(sys.argv[1:]),
        "setup": {**vars(args), "sampler": "TPE seed 42, n_startup_trials 5 (same in both)",
                  "objective": "val/auprc (maximize)", "cpu_count": os.cpu_count()},
        "unpruned": unpruned,
        "pruned": pruned,
        "total_wall_ratio_pruned_vs_unpruned": round(pruned["wall_s"] / unpruned["wall_s"], 3),
        "time_to_reach_unpruned_best_s": {
            k: {"unpruned": u, "pruned": p, "ratio": round(p / u, 3) if p and u else None}
            for k, (u, p) in reach.items()
        },
    }  # fmt: skip
    write_results("pruning", summary, args.record)
    for key in ("unpruned", "pruned"):
        r = summary[key]
        print(
            f"{key:9s} wall {r['wall_s']:7.1f} s  best {r['best_value']:.4f}  "
            f"epochs {r['epochs_trained']:3d}  {r['states']}"
        )
    print(f"total wall ratio: {summary['total_wall_ratio_pruned_vs_unpruned']}")
    print(f"time to reach the unpruned best: {summary['time_to_reach_unpruned_best_s']}")


if __name__ == "__main__":
    main()
