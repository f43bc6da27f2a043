"""Sweeps past one machine: several sweep worker processes, each the same command as it would
run on its own machine, sharing one Optuna study in a real PostgreSQL server (started here by
tests/postgres_server.py) or in a journal file on a shared filesystem. Exactly `n_trials`
trials together, none twice, none lost; a SIGKILLed worker's trial failed by the heartbeat and
run again by another worker; the pruner deciding with values other workers reported; and the
bad inputs (unreachable server, wrong password, a study with the other direction, SQLite with
several workers) each one line naming the key.

The workers run tests/sweep_app/app.py, the sweeper tests' Hydra app: `(x-2)^2 + y`, reported
per step through the trial contract the Lightning callback uses, so a trial takes a second.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import FrozenTrial, TrialState

from hydra_plugins.moe_optuna_sweeper._build import SweepConfigError
from hydra_plugins.moe_optuna_sweeper._storage import check_workers
from tests.postgres_server import Postgres, PostgresMissing, free_port, postgres_server
from tests.small import REPO, SMALL_OVERRIDES, env

APP = REPO / "tests" / "sweep_app" / "app.py"
QUIET = ("hydra.sweeper.plots=false",)
FROM_ENV = "${oc.env:SWEEP_DB_PASSWORD}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    try:
        with postgres_server() as server:
            yield server
    except PostgresMissing as missing:
        pytest.fail(str(missing), pytrace=False)


def worker(
    tmp: Path,
    name: str,
    storage: str,
    study: str,
    *overrides: str,
    password: str | None = None,
    errors_apart: bool = False,
) -> subprocess.Popen[str]:
    """One sweep worker: its own process, working directory and sweep folder, as on its own
    machine; a DSN's password through an environment variable, as the docs tell users."""
    folder = tmp / name
    folder.mkdir(parents=True, exist_ok=True)
    secret = {} if password is None else {"SWEEP_DB_PASSWORD": password}
    return subprocess.Popen(
        [
            sys.executable,
            str(APP),
            "-m",
            f"hydra.sweeper.storage={storage}",
            f"hydra.sweeper.study_name={study}",
            *QUIET,
            *overrides,
        ],  # fmt: skip
        cwd=folder,
        env={**env(), "SWEEP_DIR": str(folder / "sweep"), **secret},
        stdout=subprocess.PIPE,
        # apart for the bad inputs: Hydra prints their one line first on stderr
        stderr=subprocess.PIPE if errors_apart else subprocess.STDOUT,
        text=True,
    )


def pg_worker(
    tmp: Path, name: str, server: Postgres, study: str, *overrides: str, **options: Any
) -> subprocess.Popen[str]:
    """A worker on the test server, its DSN written as the docs write it: the password
    `${oc.env:SWEEP_DB_PASSWORD}`, resolved by OmegaConf (options: another password, port)."""
    dsn = server.dsn(password=FROM_ENV, port=options.pop("port", None))
    password = options.pop("password", server.password)
    return worker(tmp, name, dsn, study, *overrides, password=password, **options)


def finish(proc: subprocess.Popen[str], timeout: int = 240) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"a sweep worker did not finish:\n{out[-3000:]}")
    assert proc.returncode == 0, out[-3000:]
    return out


def jobs_run(folder: Path) -> dict[int, Path]:
    """{trial number: its job folder} for each job a worker ran to its end (the app writes
    `done` last)."""
    return {int(d.name): d for d in (folder / "sweep").glob("[0-9]*") if (d / "done").exists()}


def real(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """Leaves out the trials asked after the budget was taken (recorded FAIL, never run)."""
    return [t for t in trials if not t.user_attrs.get("surplus")]


def test_three_postgresql_workers_run_exactly_n_trials_and_agree_on_the_best(
    tmp_path: Path, postgres: Postgres
) -> None:
    # a grace period no stall of a loaded machine reaches: nobody dies here
    args = ("hydra.sweeper.n_trials=6", "hydra.sweeper.n_workers=3",
            "hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.grace_period=20")  # fmt: skip
    procs = [pg_worker(tmp_path, f"w{i}", postgres, "three", *args) for i in range(3)]
    outputs = [finish(p) for p in procs]

    # the password never reached a log line or the files Hydra saves with each job
    for out in outputs:
        assert postgres.password not in out and "sweeps:***@" in out
    saved = [p.read_text() for p in tmp_path.rglob(".hydra/*.yaml")]
    assert saved and not any(postgres.password in text for text in saved)

    trials = optuna.load_study(study_name="three", storage=postgres.dsn()).trials
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers))  # no trial number twice
    assert [t.state for t in real(trials)] == [TrialState.COMPLETE] * 6
    # each trial ran exactly one job, in one of the workers, and every worker took a share
    runs = [jobs_run(tmp_path / f"w{i}") for i in range(3)]
    ran = [number for share in runs for number in share]
    assert sorted(ran) == sorted(t.number for t in real(trials))
    assert all(runs), [sorted(share) for share in runs]
    # the study's best is the best of all the workers' trials, and every worker reports it
    best = min(real(trials), key=lambda t: t.value)
    for i in range(3):
        result = yaml.safe_load(
            (tmp_path / f"w{i}" / "sweep/optimization_results.yaml").read_text()
        )
        assert (result["best_trial"], result["best_value"]) == (best.number, best.value)


def test_a_sigkilled_workers_trial_is_failed_by_the_heartbeat_and_run_again_by_another(
    tmp_path: Path, postgres: Postgres
) -> None:
    # ~2 s a trial: a wide window to catch worker a mid-trial on a loaded machine
    args = ("hydra.sweeper.n_trials=5", "hydra.sweeper.n_workers=2", "sleep=0.5", "steps=4",
            "hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.grace_period=5")  # fmt: skip
    victim = pg_worker(tmp_path, "a", postgres, "kill", *args)
    survivor = pg_worker(tmp_path, "b", postgres, "kill", *args)
    killed = None
    deadline = time.monotonic() + 120
    try:
        while killed is None and time.monotonic() < deadline:
            time.sleep(0.1)
            if victim.poll() is not None:
                pytest.fail("worker a ended before it could be killed mid-trial")
            for job in (tmp_path / "a" / "sweep").glob("[0-9]*"):
                if (job / "pid").exists() and not (job / "done").exists():
                    killed = int(job.name)  # its job has started and not finished
                    os.kill(victim.pid, signal.SIGKILL)
                    break
        assert killed is not None, "worker a never started a trial"
    finally:
        victim.kill()
        victim.wait(timeout=30)
    out = finish(survivor)

    trials = optuna.load_study(study_name="kill", storage=postgres.dsn()).trials
    (cut,) = [t for t in trials if t.number == killed]
    assert cut.state == TrialState.FAIL  # by the heartbeat: nobody told it
    (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == killed]
    assert retry.params == cut.params and retry.state == TrialState.COMPLETE
    assert retry.number in jobs_run(tmp_path / "b")  # the other worker ran it
    counted = [t for t in real(trials) if t.number != killed]
    assert Counter(t.state for t in counted) == {TrialState.COMPLETE: 5}, out[-2000:]


def test_the_pruner_stops_a_trial_against_values_another_worker_reported(
    tmp_path: Path, postgres: Postgres
) -> None:
    study = optuna.create_study(study_name="prune", storage=postgres.dsn())
    for _ in range(2):  # reports 3, 2, 1 (value 0 plus steps left)
        study.enqueue_trial({"x": 2.0, "y": 0})
    pruning = ("hydra/sweeper/pruner=median", "hydra.sweeper.pruner.n_startup_trials=2",
               "hydra.sweeper.n_workers=2")  # fmt: skip
    finish(pg_worker(tmp_path, "first", postgres, "prune", "hydra.sweeper.n_trials=2", *pruning))
    study.enqueue_trial({"x": -5.0, "y": 2})  # value 51: reports 54 at step 0
    out = finish(
        pg_worker(tmp_path, "second", postgres, "prune", "hydra.sweeper.n_trials=3", *pruning)
    )

    trials = optuna.load_study(study_name="prune", storage=postgres.dsn()).trials
    assert [t.state for t in trials] == [
        TrialState.COMPLETE,
        TrialState.COMPLETE,
        TrialState.PRUNED,
    ]
    # pruned at its first report: the only values to compare with were the first worker's
    assert trials[2].intermediate_values == {0: 54.0}
    assert sorted(jobs_run(tmp_path / "first")) == [0, 1]
    assert "Trial 2 pruned" in out


def test_two_workers_share_a_journal_file_study(tmp_path: Path) -> None:
    journal = f"journal:///{tmp_path}/shared/study.log"  # absolute: four slashes
    args = ("hydra.sweeper.n_trials=6", "hydra.sweeper.n_workers=2")
    procs = [worker(tmp_path, f"j{i}", journal, "journal", *args) for i in range(2)]
    for proc in procs:
        finish(proc)

    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(f"{tmp_path}/shared/study.log")
    )
    trials = optuna.load_study(study_name="journal", storage=storage).trials
    assert [t.state for t in real(trials)] == [TrialState.COMPLETE] * 6
    runs = [jobs_run(tmp_path / f"j{i}") for i in range(2)]
    assert sorted(n for share in runs for n in share) == sorted(t.number for t in real(trials))
    assert all(runs)


def first_error_line(proc: subprocess.Popen[str]) -> str:
    """Hydra prints a CompactHydraException as its message alone, first on stderr."""
    out, err = proc.communicate(timeout=240)
    assert proc.returncode != 0, out[-2000:]
    assert "Traceback" not in err, err[-3000:]
    return err.splitlines()[0]


def test_bad_storage_input_is_one_line_naming_the_key(tmp_path: Path, postgres: Postgres) -> None:
    optuna.create_study(study_name="upward", storage=postgres.dsn(), direction="maximize")
    closed = free_port()
    sqlite = f"sqlite:///{tmp_path}/study.db"
    many = ("hydra.sweeper.n_workers=3",)
    procs = {  # all at once: each worker's start-up is most of its time
        "unreachable": pg_worker(
            tmp_path, "u", postgres, "u", *many, port=closed, errors_apart=True
        ),
        "password": pg_worker(
            tmp_path, "p", postgres, "p", *many, password="wrong-pw", errors_apart=True
        ),
        "direction": pg_worker(tmp_path, "d", postgres, "upward", *many, errors_apart=True),
        "sqlite": worker(tmp_path, "s", sqlite, "s", *many, errors_apart=True),
    }
    errors = {case: first_error_line(proc) for case, proc in procs.items()}

    assert errors["unreachable"] == (
        f"hydra.sweeper.storage: cannot reach the database server at 127.0.0.1:{closed} "
        "(Connection refused)"
    )
    assert errors["password"].startswith(
        f"hydra.sweeper.storage: the database server at 127.0.0.1:{postgres.port} refused user "
        "'sweeps': password authentication failed for user \"sweeps\""
    )
    assert "wrong-pw" not in errors["password"]
    assert errors["direction"].startswith(
        "hydra.sweeper.direction = minimize: study 'upward' in postgresql+psycopg://sweeps:***@"
    )
    assert "was created to maximize" in errors["direction"]
    assert errors["sqlite"] == (
        f"hydra.sweeper.storage = {sqlite}: SQLite is for one sweep process, but "
        "hydra.sweeper.n_workers = 3: use PostgreSQL (postgresql+psycopg://...) or "
        "journal:///path on a shared filesystem"
    )


@pytest.mark.parametrize(
    ("url", "n_workers", "heartbeat", "grace", "names"),
    [
        (None, 2, None, None, "hydra.sweeper.storage = null"),
        ("journal:////x/study.log", 1, 5, None, "hydra.sweeper.heartbeat_interval"),
        ("sqlite:////x/s.db", 1, None, 10, "hydra.sweeper.grace_period"),
        ("sqlite:////x/s.db", 1, 5, 5, "hydra.sweeper.grace_period = 5"),
        ("sqlite:////x/s.db", 0, None, None, "hydra.sweeper.n_workers = 0"),
    ],
    ids=["memory-with-workers", "journal-heartbeat", "grace-alone", "grace-short", "no-workers"],
)
def test_settings_the_storage_cannot_hold_are_refused_naming_the_key(
    url: str | None, n_workers: int, heartbeat: int | None, grace: int | None, names: str
) -> None:
    with pytest.raises(SweepConfigError) as refused:
        check_workers(url, n_workers, heartbeat, grace)
    assert str(refused.value).startswith(names) and "\n" not in str(refused.value)


def test_one_sqlite_worker_with_a_heartbeat_is_allowed() -> None:
    check_workers("sqlite:////x/s.db", 1, 5, 10)


@pytest.mark.slow
def test_two_train_py_workers_share_the_project_sweep_in_postgresql(
    tmp_path: Path, postgres: Postgres
) -> None:
    """The project's own sweep as the docs run it on each machine: `python train.py -m
    hparams_search=finance_risk_optuna` twice at once, on small data, one PostgreSQL study."""
    small = [o for o in SMALL_OVERRIDES if not o.startswith(("train.batch_size", "trainer."))]
    procs = []
    # every override the same on both "machines" (they are part of what the study is), the
    # data cache too: a folder on a shared filesystem, filled by whichever worker is first
    for name in ("m1", "m2"):
        folder = tmp_path / name
        folder.mkdir()
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    str(REPO / "train.py"),
                    "-m",
                    "hparams_search=finance_risk_optuna",
                    *small,
                    "trainer.max_epochs=1",
                    "hydra.sweeper.n_trials=2",
                    "hydra.sweeper.n_workers=2",
                    "hydra.sweeper.heartbeat_interval=2",
                    "hydra.sweeper.grace_period=60",
                    *QUIET,
                    f"hydra.sweeper.storage={postgres.dsn(password=FROM_ENV)}",
                    f"hydra.sweep.dir={folder / 'sweep'}",
                    f"pipeline.data_cache={tmp_path / 'cache'}",
                ],  # fmt: skip
                cwd=REPO,
                env={**env(), "SWEEP_DB_PASSWORD": postgres.password},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    for proc in procs:
        out = finish(proc, timeout=900)  # the data stages and training: minutes when loaded
        assert postgres.password not in out

    study = optuna.load_study(study_name="finance_risk_optuna", storage=postgres.dsn())
    assert [t.state for t in real(study.trials)] == [TrialState.COMPLETE] * 2
    for trial in real(study.trials):
        run = Path(trial.user_attrs["output_dir"])
        assert run.parent.parent.name in ("m1", "m2") and run.name == str(trial.number)
        metrics = json.loads((run / "metrics" / "train.json").read_text())
        assert metrics["val"]["auprc"] == pytest.approx(trial.value)


def test_a_result_for_a_trial_another_worker_already_failed_is_dropped() -> None:
    """A worker that stalled past grace_period comes back with a result: the trial was failed
    and re-queued meanwhile, so the result is dropped (not told twice, not an error)."""
    from hydra.core.utils import JobReturn, JobStatus

    from hydra_plugins.moe_optuna_sweeper._impl import OptunaSweeperImpl

    impl = OptunaSweeperImpl(
        sampler=None, direction="minimize", storage=None, study_name=None, n_trials=1,
        n_jobs=1, max_failure_rate=0.0, search_space=None, custom_search_space=None,
        params=None, pruner=None, plots=False,
    )  # fmt: skip
    study = optuna.create_study()
    trial = study.ask()
    study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)  # the heartbeat's
    late = JobReturn(status=JobStatus.COMPLETED, _return_value=0.5)
    assert impl._tell(study, trial, late) is False
    (stored,) = study.trials
    assert stored.state == TrialState.FAIL and stored.value is None


def test_without_the_server_binaries_the_message_names_the_install_script(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tests.postgres_server as server

    monkeypatch.setattr(server.shutil, "which", lambda name: None)
    monkeypatch.setattr(server.glob, "glob", lambda pattern: [])
    with pytest.raises(PostgresMissing) as missing:
        server.bin_dir()
    assert ".ci/install-services.sh" in str(missing.value) and "\n" not in str(missing.value)
