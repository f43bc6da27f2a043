"""Throughput of sweep workers sharing one study, and what the storage costs per trial:

    python benchmarks/distributed_sweeps.py [--trials 24] [--record]

Tiny trials (tests/sweep_app/app.py: `(x-2)^2 + y`, 3 reports a trial, no training), so the
figures are the sweeper's and the storage's own cost, not a model's:

- 1, 2 and 3 worker processes (`hydra.sweeper.n_workers`, heartbeat 1 s) sharing one study in
  PostgreSQL (a throw-away server, tests/postgres_server.py), `--trials` trials in all:
  trials/minute over the whole run (the workers' start-up included) and over the trials alone
  (first trial start to last trial end, from the study's timestamps);
- one worker, no heartbeat, on SQLite, PostgreSQL and a journal file: seconds per trial (the
  storage's timestamps: ask to tell, the job's own storage connection and reports included).

On this 2-core machine the workers compete for the cores, so more workers cannot mean much
more throughput; on real machines each worker brings its own cores. Results go to
outputs/benchmarks/distributed_sweeps.json, or benchmarks/results/ with --record.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
from results_file import add_record_flag, write_results

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tests.postgres_server import postgres_server  # noqa: E402

APP = REPO / "tests" / "sweep_app" / "app.py"
ENV = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "disabled"}


def run_workers(
    root: Path, storage: str, study: str, workers: int, trials: int, heartbeat: bool
) -> dict:
    """`workers` sweep processes on one study; wall time and the study's own timings."""
    shared = [f"hydra.sweeper.n_workers={workers}"]
    if heartbeat:
        shared.append("hydra.sweeper.heartbeat_interval=1")
    procs = []
    start = time.perf_counter()
    for i in range(workers):
        folder = root / f"{study}-{i}"
        folder.mkdir(parents=True)
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    str(APP),
                    "-m",
                    f"hydra.sweeper.storage={storage}",
                    f"hydra.sweeper.study_name={study}",
                    f"hydra.sweeper.n_trials={trials}",
                    "hydra.sweeper.plots=false",
                    *shared,
                ],  # fmt: skip
                cwd=folder,
                env={**ENV, "SWEEP_DIR": str(folder / "sweep")},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"a worker failed:\n{err[-3000:]}")
    wall = time.perf_counter() - start
    loaded = optuna.load_study(study_name=study, storage=_storage(storage))
    done = [t for t in loaded.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == trials, f"{len(done)} of {trials} trials complete"
    span = (
        max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)
    ).total_seconds()
    per_trial = [(t.datetime_complete - t.datetime_start).total_seconds() for t in done]
    return {
        "workers": workers,
        "trials": trials,
        "wall_s": round(wall, 2),
        "trials_per_minute_wall": round(trials / wall * 60, 1),
        "trials_span_s": round(span, 2),
        "trials_per_minute_trials": round(trials / span * 60, 1),
        "trial_s_median": round(statistics.median(per_trial), 3),
    }


def _storage(url: str) -> object:
    if url.startswith("journal:///"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(url[len("journal:///") :]))
    return url


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=24, help="trials per study (all workers)")
    add_record_flag(parser)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp, postgres_server() as pg:
        root = Path(tmp)
        scaling = []
        for workers in (1, 2, 3):
            result = run_workers(root, pg.dsn(), f"pg-{workers}", workers, args.trials, True)
            scaling.append(result)
            print(result)
        storages = {
            "sqlite": f"sqlite:///{root}/study.db",
            "postgresql": pg.dsn(),
            "journal": f"journal:///{root}/study.log",
        }
        single = {}
        for name, url in storages.items():
            single[name] = run_workers(root, url, f"one-{name}", 1, args.trials, False)
            print(name, single[name])
    sqlite_s = single["sqlite"]["trial_s_median"]
    payload = {
        "command": "python benchmarks/distributed_sweeps.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared), {platform.system()}",
        "trial": "tests/sweep_app/app.py: 3 reports a trial, no training",
        "postgresql_workers": scaling,
        "one_worker_by_storage": single,
        "postgresql_minus_sqlite_s_per_trial": round(
            single["postgresql"]["trial_s_median"] - sqlite_s, 3
        ),
        "journal_minus_sqlite_s_per_trial": round(
            single["journal"]["trial_s_median"] - sqlite_s, 3
        ),
    }
    write_results("distributed_sweeps", payload, args.record)


if __name__ == "__main__":
    main()
