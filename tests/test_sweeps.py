"""The Optuna sweeper (hydra_plugins/moe_optuna_sweeper): studies in SQLite, pruning, failed
and NaN trials, resume after SIGKILL, samplers, parallel trials, the released plugin's YAML,
results and best params; then the real pipeline under it (pruning from the Lightning loop, a
failing trial, the data cache, W&B runs without the API key in any file).

Most tests drive tests/sweep_app/app.py, a Hydra app that reports `(x-2)^2 + y` per step
through the same trial contract the Lightning callback uses, so they take seconds.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
import sqlalchemy
import yaml
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from hydra_plugins.moe_optuna_sweeper._impl import search_space_from_overrides
from tests.small import REPO, SMALL_OVERRIDES, env

APP = REPO / "tests" / "sweep_app" / "app.py"
STUDY = "t"


def app_command(tmp: Path, *overrides: str, storage: bool = True) -> list[str]:
    store = f"sqlite:///{tmp}/study.db" if storage else "null"
    return [
        sys.executable,
        str(APP),
        "-m",
        f"hydra.sweeper.storage={store}",
        f"hydra.sweeper.study_name={STUDY}",
        *overrides,
    ]


def app_env(tmp: Path) -> dict[str, str]:
    return {**env(), "SWEEP_DIR": str(tmp / "sweep")}


def sweep(tmp: Path, *overrides: str, storage: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        app_command(tmp, *overrides, storage=storage),
        cwd=tmp,
        env=app_env(tmp),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return done


def study(tmp: Path) -> optuna.Study:
    return optuna.load_study(study_name=STUDY, storage=f"sqlite:///{tmp}/study.db")


def states(trials: list[optuna.trial.FrozenTrial]) -> Counter:
    return Counter(t.state for t in trials)


def results(tmp: Path) -> dict:
    return yaml.safe_load((tmp / "sweep" / "optimization_results.yaml").read_text())


def test_sweep_records_trials_in_sqlite_and_writes_results_and_plots(tmp_path: Path) -> None:
    sweep(tmp_path, "hydra.sweeper.n_trials=5")
    s = study(tmp_path)
    assert states(s.trials) == {TrialState.COMPLETE: 5}
    out = results(tmp_path)
    assert out["best_value"] == pytest.approx(s.best_value)
    assert out["best_params"] == s.best_params
    assert out["trials"] == {"COMPLETE": 5}
    best = (tmp_path / "sweep" / "best_params.yaml").read_text()
    assert best.startswith("# @package _global_")
    assert yaml.safe_load(best) == s.best_params  # x and y are top-level keys of the app
    for plot in ("optimization_history", "param_importances", "parallel_coordinate"):
        assert (tmp_path / "sweep" / "plots" / f"{plot}.png").stat().st_size > 1000
    assert (tmp_path / "sweep" / "plots" / "index.html").is_file() or (
        tmp_path / "sweep" / "plots" / "optimization_history.html"
    ).is_file()
    # each trial's run dir is its trial number, and the trial knows it
    assert all(Path(t.user_attrs["output_dir"]).name == str(t.number) for t in s.trials)


def test_best_params_file_round_trips_as_overrides(tmp_path: Path) -> None:
    sweep(tmp_path, "hydra.sweeper.n_trials=3")
    best = study(tmp_path).best_params
    done = subprocess.run(
        [sys.executable, str(APP), "--config-dir", str(tmp_path), "+sweep=best_params"]
        + ["--cfg", "job"],
        cwd=tmp_path,
        env=app_env(tmp_path),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    composed = yaml.safe_load(done.stdout)
    assert composed["x"] == pytest.approx(best["x"]) and composed["y"] == best["y"]
    command = (tmp_path / "sweep" / "best_command.txt").read_text()
    assert "+sweep=best_params" in command


@pytest.mark.parametrize("storage", [True, False], ids=["sqlite", "in-memory"])
def test_median_pruner_stops_trials_and_records_them_as_pruned(
    tmp_path: Path, storage: bool
) -> None:
    done = sweep(
        tmp_path,
        "hydra.sweeper.n_trials=10",
        "hydra/sweeper/pruner=median",
        "hydra.sweeper.pruner.n_startup_trials=2",
        "hydra.sweeper.pruner.n_warmup_steps=0",
        storage=storage,
    )
    if storage:
        counts = states(study(tmp_path).trials)
        pruned = study(tmp_path).get_trials(states=(TrialState.PRUNED,))
        # a pruned trial stopped at its first report: one intermediate value, and no "done"
        assert all(len(t.intermediate_values) == 1 for t in pruned)
        assert not any((Path(t.user_attrs["output_dir"]) / "done").exists() for t in pruned)
        assert counts[TrialState.PRUNED] >= 1 and counts[TrialState.FAIL] == 0
    else:
        counts = results(tmp_path)["trials"]
        assert counts.get("PRUNED", 0) >= 1 and "FAIL" not in counts
    assert "pruner MedianPruner" in done.stdout + done.stderr


def test_failed_and_nan_trials_are_failed_and_the_sweep_goes_on(tmp_path: Path) -> None:
    sweep(
        tmp_path,
        "hydra.sweeper.n_trials=10",
        "hydra/sweeper/sampler=random",
        "hydra.sweeper.max_failure_rate=1.0",
        "fail_above=2.0",
        "nan_below=-2.0",
    )
    trials = study(tmp_path).trials
    failed = [t for t in trials if t.state == TrialState.FAIL]
    reasons = " ".join(t.user_attrs.get("fail_reason", "") for t in failed)
    assert "ValueError" in reasons and "non-finite" in reasons
    assert all(t.state == TrialState.COMPLETE for t in trials if -2.0 <= t.params["x"] <= 2.0)
    assert all(t.state == TrialState.FAIL for t in trials if not -2.0 <= t.params["x"] <= 2.0)
    assert len(trials) == 10 and (tmp_path / "sweep" / "optimization_results.yaml").is_file()


def failing_sweep(tmp: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        app_command(tmp, "hydra/sweeper/sampler=random", *overrides),
        cwd=tmp,
        env=app_env(tmp),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_by_default_the_first_failed_trial_ends_the_sweep_with_its_exception_on_stderr(
    tmp_path: Path,
) -> None:
    # the released plugin's default max_failure_rate (0.0) and its way of failing: the job's
    # own exception, re-raised by the sweeper, on stderr; the sweep exits non-zero
    done = failing_sweep(tmp_path, "hydra.sweeper.n_trials=10", "fail_above=0.0")
    assert done.returncode == 1, done.stdout[-2000:]
    assert "Error executing job with overrides" in done.stderr
    assert re.search(r"ValueError: x = [0-9.]+ > 0\.0", done.stderr), done.stderr[-2000:]
    trials = study(tmp_path).trials
    assert trials[-1].state == TrialState.FAIL and len(trials) < 10
    assert all(t.state == TrialState.COMPLETE for t in trials[:-1])
    # what ran is still summarised
    assert results(tmp_path)["trials"]["FAIL"] == 1


@pytest.mark.parametrize("rate", ["0.5", "1.0"])
def test_a_sweep_in_which_every_trial_failed_exits_non_zero_whatever_the_rate(
    tmp_path: Path, rate: str
) -> None:
    done = failing_sweep(
        tmp_path,
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.n_jobs=2",
        f"hydra.sweeper.max_failure_rate={rate}",
        "fail_above=-10",
    )
    assert done.returncode == 1, done.stdout[-2000:]
    trials = study(tmp_path).trials
    assert {t.state for t in trials} == {TrialState.FAIL}
    if rate == "1.0":  # every batch is allowed to fail: all 4 ran, then the summary
        assert len(trials) == 4
        summary = r"every trial of study 't' failed \(4 of 4; 1 with: ValueError: x = "
        assert re.search(summary, done.stderr), done.stderr[-2000:]
    else:  # 2 of 2 > 0.5: the first batch ends it, with the job's exception
        assert len(trials) == 2
        assert re.search(r"ValueError: x = -?[0-9.]+ > -10", done.stderr), done.stderr[-2000:]


def test_the_sweeper_appears_once_in_hydras_plugin_discovery(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(APP), "--info", "plugins"],
        cwd=tmp_path,
        env=app_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    section = done.stdout.split("Sweeper:")[1].split(":\n")[0]
    sweepers = [line.strip() for line in section.splitlines() if line.strip().isidentifier()]
    assert sweepers == ["BasicSweeper", "OptunaSweeper"]


def test_killed_sweep_continues_without_losing_or_repeating_trials(tmp_path: Path) -> None:
    args = ("hydra.sweeper.n_trials=6", "steps=4")
    hold = tmp_path / "hold"  # the third trial waits while this file exists: killed mid-trial
    hold.touch()
    proc = subprocess.Popen(
        app_command(tmp_path, *args),
        cwd=tmp_path,
        env={**app_env(tmp_path), "SWEEP_HOLD": str(hold)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline:
            time.sleep(0.1)
            if proc.poll() is not None:
                pytest.fail(f"the sweep exited ({proc.returncode}) before it could be killed")
            if not (tmp_path / "sweep" / "2" / "pid").exists():
                continue  # the held third trial has not started yet
            try:
                trials = study(tmp_path).trials
            except (
                KeyError,
                optuna.exceptions.StorageInternalError,
                sqlalchemy.exc.OperationalError,  # "database is locked" while the sweep writes
            ):
                continue
            if states(trials)[TrialState.COMPLETE] >= 2 and any(
                t.state == TrialState.RUNNING for t in trials
            ):
                break
        else:
            pytest.fail("the sweep did not reach its held third trial in time")
        os.kill(proc.pid, signal.SIGKILL)  # mid-trial: one trial is left RUNNING
    finally:
        proc.wait(timeout=30)
        hold.unlink()
    killed = study(tmp_path).trials
    interrupted = [t for t in killed if t.state == TrialState.RUNNING]
    assert len(interrupted) == 1
    done = sweep(tmp_path, *args)  # the same command again
    assert "re-queued interrupted trials" in done.stdout + done.stderr

    trials = study(tmp_path).trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 6  # n_trials, none lost
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers))
    # the trials finished before the kill were not run again: every param set ran once
    params = [tuple(sorted(t.params.items())) for t in complete]
    assert len(params) == len(set(params))
    # the interrupted trial is FAIL and its params were re-run by exactly one retry
    (cut,) = [t for t in trials if t.number == interrupted[0].number]
    assert cut.state == TrialState.FAIL
    retries = [t for t in trials if t.user_attrs.get("retry_of") == cut.number]
    assert len(retries) == 1 and retries[0].params == cut.params
    assert retries[0].state == TrialState.COMPLETE
    assert results(tmp_path)["trials"]["COMPLETE"] == 6


@pytest.mark.parametrize(
    ("sampler", "extra", "name"),
    [
        ("random", [], "RandomSampler"),
        ("cmaes", [], "CmaEsSampler"),
        ("qmc", [], "QMCSampler"),
        # grid: discrete params only (a command-line sweep replaces the config.s x); n_trials
        # is capped at the grid size (2 x 3)
        ("grid", ["x=choice(0.0,2.0)", "hydra.sweeper.n_trials=50"], ""),
    ],
)
def test_samplers_are_chosen_by_config(
    tmp_path: Path, sampler: str, extra: list[str], name: str
) -> None:
    done = sweep(tmp_path, f"hydra/sweeper/sampler={sampler}", "hydra.sweeper.n_trials=4", *extra)
    trials = study(tmp_path).trials
    if sampler == "grid":
        assert len(trials) == 6
        assert {(t.params["x"], t.params["y"]) for t in trials} == {
            (x, y) for x in (0.0, 2.0) for y in (0, 1, 2)
        }
        assert "sampler GridSampler" in done.stdout + done.stderr
    else:
        assert states(trials) == {TrialState.COMPLETE: 4}
        assert f"sampler {name}" in done.stdout + done.stderr


SAMPLERS = {
    "tpe": "TPESampler",
    "random": "RandomSampler",
    "cmaes": "CmaEsSampler",
    "grid": "GridSampler",
    "qmc": "QMCSampler",
    "nsgaii": "NSGAIISampler",
}
PRUNERS = {
    "median": "MedianPruner",
    "successive_halving": "SuccessiveHalvingPruner",
    "hyperband": "HyperbandPruner",
    "none": "NopPruner",
}


def compose_sweep(*overrides: str) -> DictConfig:
    """train.py's config with the project's sweep config, as `python train.py -m` composes it
    (the study in memory)."""
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(
            "config",
            overrides=[
                "hparams_search=finance_risk_optuna",
                "hydra.sweeper.storage=null",
                *overrides,
            ],
            return_hydra_config=True,
        )


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # QMCSampler
@pytest.mark.parametrize("pruner", list(PRUNERS))
@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_every_sampler_and_pruner_choice_runs_with_the_project_sweep_config(
    sampler: str, pruner: str
) -> None:
    # conf/hparams_search/finance_risk_optuna.yaml sets TPE's and the median pruner's own
    # arguments; any other choice from the README's lists must still build and run a study
    cfg = compose_sweep(f"hydra/sweeper/sampler={sampler}", f"hydra/sweeper/pruner={pruner}")
    sweeper = instantiate(cfg.hydra.sweeper).sweeper  # as Hydra does for `-m`
    space, fixed = search_space_from_overrides([f"{k}={v}" for k, v in sweeper.params.items()])
    if sampler == "grid":  # a grid needs discrete params (README): two points per interval
        space = {
            name: d
            if isinstance(d, CategoricalDistribution)
            else CategoricalDistribution([d.low, d.high])
            for name, d in space.items()
        }
    study = sweeper.create_study(space, fixed)
    assert type(study.sampler).__name__ == SAMPLERS[sampler]
    assert type(study.pruner).__name__ == PRUNERS[pruner]
    # the sweep config's settings still reach the choices they were written for
    if sampler == "tpe":
        assert study.sampler._n_startup_trials == 5
    if pruner == "median":
        assert (study.pruner._n_startup_trials, study.pruner._n_warmup_steps) == (3, 1)

    for _ in range(4):  # ask, report per epoch, prune or tell: what a sweep does per trial
        trial = study.ask(fixed_distributions=space)
        value = trial.params["train.lr"] * 100
        for epoch in range(3):
            trial.report(value + epoch, epoch)
            if trial.should_prune():
                study.tell(trial, state=TrialState.PRUNED)
                break
        else:
            study.tell(trial, value + 3)
    assert len(study.trials) == 4


def test_a_key_no_optuna_sampler_takes_is_one_line_naming_it(tmp_path: Path) -> None:
    done = subprocess.run(
        app_command(
            tmp_path, "hydra/sweeper/sampler=random", "+hydra.sweeper.sampler.n_startup_trial=2"
        ),
        cwd=tmp_path,
        env=app_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert done.stderr.splitlines()[0] == (
        "hydra.sweeper.sampler.n_startup_trial: no Optuna sampler has this argument; "
        "did you mean n_startup_trials? RandomSampler takes seed"
    )
    assert "Traceback" not in done.stderr


def test_the_readme_sampler_and_pruner_switch_runs_a_sweep(tmp_path: Path) -> None:
    # the README's `hydra/sweeper/sampler=random hydra/sweeper/pruner=successive_halving`, on
    # an app whose config sets TPE's and the median pruner's arguments as the project's does
    done = sweep(
        tmp_path,
        "hydra/sweeper/sampler=random",
        "hydra/sweeper/pruner=successive_halving",
        "hydra.sweeper.n_trials=4",
    )
    log = done.stdout + done.stderr
    assert "sampler RandomSampler, pruner SuccessiveHalvingPruner" in log
    assert "hydra.sweeper.sampler.n_startup_trials is not a RandomSampler argument: left out" in log
    assert len(study(tmp_path).trials) == 4


def test_a_sweep_with_other_overrides_does_not_silently_continue_the_stored_study(
    tmp_path: Path,
) -> None:
    sweep(tmp_path, "hydra.sweeper.n_trials=2")
    sweep(tmp_path, "hydra.sweeper.n_trials=3")  # more trials: the same sweep, continued
    assert len(study(tmp_path).trials) == 3

    changed = subprocess.run(
        app_command(tmp_path, "hydra.sweeper.n_trials=5", "y=1"),
        cwd=tmp_path,
        env=app_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert changed.returncode != 0
    line = changed.stderr.splitlines()[0]
    assert line.startswith(f"study '{STUDY}' in sqlite:///{tmp_path}/study.db was run with other")
    assert "y: CategoricalDistribution(choices=(0, 1, 2)) -> =1" in line
    assert "hydra.sweeper.force_continue=true" in line and "hydra.sweeper.study_name=" in line
    assert len(study(tmp_path).trials) == 3  # nothing was added

    # on purpose: the study goes on with the new overrides
    sweep(tmp_path, "hydra.sweeper.n_trials=5", "y=1", "hydra.sweeper.force_continue=true")
    trials = study(tmp_path).trials
    assert len(trials) == 5 and [t.user_attrs.get("y") for t in trials[3:]] == ["1", "1"]
    assert study(tmp_path).user_attrs["sweep_overrides"]["overrides"]["y"] == "=1"


def test_an_unnamed_study_is_named_after_its_overrides(tmp_path: Path) -> None:
    unnamed = "hydra.sweeper.study_name=null"
    sweep(tmp_path, unnamed, "hydra.sweeper.n_trials=2")
    sweep(tmp_path, unnamed, "hydra.sweeper.n_trials=3")  # the same command continues it
    sweep(tmp_path, unnamed, "hydra.sweeper.n_trials=2", "y=1")  # another one starts its own
    storage = f"sqlite:///{tmp_path}/study.db"
    names = optuna.get_all_study_names(storage)
    assert len(names) == 2 and all(name.startswith("sweep-") for name in names)
    sizes = sorted(len(optuna.load_study(study_name=n, storage=storage).trials) for n in names)
    assert sizes == [2, 3]


def test_parallel_trials_run_in_joblib_worker_processes(tmp_path: Path) -> None:
    sweep(
        tmp_path,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.n_trials=4",
        "hydra/sweeper/pruner=median",  # reports from worker processes reach the study
        "sleep=0.2",
    )
    trials = study(tmp_path).trials
    assert states(trials)[TrialState.COMPLETE] + states(trials)[TrialState.PRUNED] == 4
    pids = {(Path(t.user_attrs["output_dir"]) / "pid").read_text() for t in trials}
    assert len(pids) >= 2 and str(os.getpid()) not in pids
    assert all(t.intermediate_values for t in trials)


def test_multi_objective_study_writes_the_pareto_front(tmp_path: Path) -> None:
    sweep(
        tmp_path,
        "hydra/sweeper/sampler=nsgaii",
        "hydra.sweeper.direction=[minimize,minimize]",
        "hydra.sweeper.n_trials=6",
        "objectives=2",
    )
    out = results(tmp_path)
    assert out["directions"] == ["minimize", "minimize"]
    assert out["solutions"] and all(len(s["values"]) == 2 for s in out["solutions"])
    assert (tmp_path / "sweep" / "plots" / "pareto_front.png").is_file()


LHT_CONFIG = """\
# @package _global_
# lightning-hydra-template's configs/hparams_search/mnist_optuna.yaml, keys unchanged
defaults:
  - override /hydra/sweeper: optuna

hydra:
  mode: "MULTIRUN"
  sweeper:
    _target_: hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper
    storage: null
    study_name: null
    n_jobs: 1
    direction: minimize
    n_trials: 3
    sampler:
      _target_: optuna.samplers.TPESampler
      seed: 1234
      n_startup_trials: 10
    params:
      x: interval(-5.0, 5.0)
      y: choice(0, 1, 2)
"""


def test_a_lightning_hydra_template_sweep_config_runs_unchanged(tmp_path: Path) -> None:
    (tmp_path / "conf" / "hparams_search").mkdir(parents=True)
    (tmp_path / "conf" / "hparams_search" / "lht.yaml").write_text(LHT_CONFIG)
    done = subprocess.run(
        [sys.executable, str(APP), "--config-dir", str(tmp_path / "conf"), "+hparams_search=lht"],
        cwd=tmp_path,
        env=app_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert results(tmp_path)["trials"] == {"COMPLETE": 3}


# --- the real pipeline under the sweeper ------------------------------------------------

SECRET = "sekrit0123456789abcdef0123456789abcdef01"


@pytest.mark.slow
def test_pipeline_sweep_prunes_fails_caches_data_and_tracks_without_the_key(
    tmp_path: Path,
) -> None:
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    storage = f"sqlite:///{sweep_dir}/study.db"
    s = optuna.create_study(study_name="pipeline_test", storage=storage, direction="maximize")
    s.enqueue_trial({"train.lr": 3e-3, "data.source.rows": 6000})  # completes
    s.enqueue_trial({"train.lr": 1e-3, "data.source.rows": 6000})  # pruned after epoch 0
    s.enqueue_trial({"train.lr": 1e-3, "data.source.rows": 5})  # fails: too few rows
    small = [o for o in SMALL_OVERRIDES if not o.startswith(("data.source.rows", "logger."))]
    done = subprocess.run(
        [sys.executable, "train.py", "--config-dir", "tests/sweep_app", "-m"]
        + ["hparams_search=pipeline_test", *small]
        + [f"logger.wandb.dir={tmp_path / 'wandb'}", f"hydra.sweep.dir={sweep_dir}"],
        cwd=REPO,
        env={**env(), "WANDB_MODE": "offline", "WANDB_API_KEY": SECRET},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    trials = optuna.load_study(study_name="pipeline_test", storage=storage).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL]
    assert list(trials[1].intermediate_values) == [0]  # pruned from the validation loop
    assert "PipelineError" in trials[2].user_attrs["fail_reason"]

    # trial 1 took the data stages' outputs from trial 0's cache entry
    (entry,) = [p for p in (sweep_dir / "cache").iterdir() if not p.name.startswith(".")]
    assert (entry / "COMPLETE").is_file()
    first, second = (sweep_dir / str(n) / "data" / "augmented" / "train.arrow" for n in (0, 1))
    assert first.read_bytes() == second.read_bytes()
    assert (sweep_dir / "0" / "export" / "model.onnx").is_file()

    # W&B: one offline run per trial, grouped by study, the ONNX model as an artifact
    runs = sorted((tmp_path / "wandb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 3
    records = [b"".join(p.read_bytes() for p in run.glob("*.wandb")) for run in runs]
    assert all(b"pipeline_test" in r for r in records)
    assert b"pipeline_test-trial-0" in records[0] and b"model-finance_risk-moe_mlp" in records[0]
    assert b"PRUNED" in records[1] and b"FAILED" in records[2]
    # the API key is in no file the sweep or W&B wrote
    leaked = [p for p in tmp_path.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert leaked == []

    # best_params.yaml goes back into train.py as an override file
    composed = subprocess.run(
        [sys.executable, "train.py", "--config-dir", str(tmp_path), "+sweep=best_params"]
        + ["--cfg", "job"],
        cwd=REPO,
        env=env(),
        capture_output=True,
        text=True,
    )
    assert composed.returncode == 0, composed.stderr
    job = yaml.safe_load(composed.stdout)
    assert job["train"]["lr"] == pytest.approx(3e-3) and job["data"]["source"]["rows"] == 6000


def test_a_bad_pipeline_node_is_one_clear_error() -> None:
    done = subprocess.run(
        [sys.executable, "train.py", "+pipeline.stages=[ingest,train]"],
        cwd=REPO,
        env=env(),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "error: train.py config: key 'pipeline.stages'" in done.stderr
