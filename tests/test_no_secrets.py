"""No secret in any output: with a W&B API key, DVC remote credentials and a database password
in the sweep's storage DSN (given on the command line, as a user would), a small pipeline run
and a small sweep of the real pipeline write none of them into any file (params.yaml, Hydra's
saved .hydra/ files, logs, metrics, the model card, W&B's run files) or onto their console."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from pipelines.compose import compose_params
from tests.small import REPO, SMALL_OVERRIDES, env
from tests.sweep_app.password_sqlite import dsn, register

# recognisable values, each found by a plain byte search
CREDENTIALS = {
    "WANDB_API_KEY": "wandbkey0secret0" + "9f3c" * 6,  # W&B's keys are 40 characters
    # DVC remotes take their credentials from these (S3, Azure)
    "AWS_ACCESS_KEY_ID": "AKIASECRETACCESSID77",
    "AWS_SECRET_ACCESS_KEY": "awssecret0key0" + "b7e1" * 6,
    "AZURE_STORAGE_KEY": "azuresecret0key0" + "c4d2" * 6,
}
DB_PASSWORD = "dbpassword0secret0a5b9e3"
SECRETS = [*CREDENTIALS.values(), DB_PASSWORD]

# train.py with the test DSN's SQLAlchemy dialect registered (tests/sweep_app/password_sqlite)
WITH_DIALECT = """
import runpy, sys
from tests.sweep_app.password_sqlite import register
register()
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def leaks(root: Path, *texts: str) -> list[str]:
    """Every file under `root` and console text holding any secret."""
    found = [
        f"{path.relative_to(root)}: {secret[:12]}..."
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.is_symlink()
        for secret in SECRETS
        if secret.encode() in path.read_bytes()
    ]
    found += [f"console: {s[:12]}..." for text in texts for s in SECRETS if s in text]
    return found


def run(command: list[str], environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return done


@pytest.mark.slow
def test_no_credential_reaches_any_file_a_pipeline_run_and_a_sweep_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    environment = {**env(), **CREDENTIALS, "WANDB_MODE": "offline"}
    small = [o for o in SMALL_OVERRIDES if not o.startswith("logger.")]  # W&B on, offline
    wandb_dir = f"logger.wandb.dir={tmp_path / 'wandb'}"

    compose_params(tmp_path / "params.yaml", [])
    single = run(
        [sys.executable, "train.py", *small, wandb_dir, f"hydra.run.dir={tmp_path / 'run'}"],
        environment,
    )

    register()
    storage = dsn("sweeper", DB_PASSWORD, str(tmp_path / "study.db"))
    study = optuna.create_study(study_name="pipeline_test", storage=storage, direction="maximize")
    study.enqueue_trial({"train.lr": 3e-3, "data.source.rows": 6000})
    sweep_dir = tmp_path / "sweep"
    sweep = run(
        [sys.executable, "-c", WITH_DIALECT, "train.py", "--config-dir", "tests/sweep_app", "-m"]
        + ["hparams_search=pipeline_test", *small, wandb_dir, f"hydra.sweep.dir={sweep_dir}"]
        + ["hydra.sweeper.n_trials=1", f"hydra.sweeper.storage={storage}"],
        environment,
    )

    # the runs really happened, with the password-protected storage and W&B on
    trials = optuna.load_study(study_name="pipeline_test", storage=storage).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE]
    assert (tmp_path / "run" / "export" / "model_card.json").is_file()
    assert (sweep_dir / "0" / "export" / "model_card.json").is_file()
    assert len(list((tmp_path / "wandb" / "wandb").glob("offline-run-*"))) == 2
    # Hydra kept the sweep's storage override, with the password masked
    saved = (sweep_dir / "0" / ".hydra" / "hydra.yaml").read_text()
    assert "sqlitepw://sweeper:***@/" in saved

    texts = (single.stdout, single.stderr, sweep.stdout, sweep.stderr)
    assert leaks(tmp_path, *texts) == []


def test_the_leak_scan_finds_a_secret_in_a_nested_file_and_on_the_console(tmp_path: Path) -> None:
    """The scan above is not vacuous: a secret anywhere is reported."""
    nested = tmp_path / "a" / ".hydra"
    nested.mkdir(parents=True)
    (nested / "overrides.yaml").write_text(f"- hydra.sweeper.storage=pg://u:{DB_PASSWORD}@h/db\n")
    assert leaks(tmp_path, f"key {CREDENTIALS['WANDB_API_KEY']}") == [
        f"a/.hydra/overrides.yaml: {DB_PASSWORD[:12]}...",
        f"console: {CREDENTIALS['WANDB_API_KEY'][:12]}...",
    ]


@pytest.mark.parametrize(
    ("override", "saved"),
    [
        (
            f"hydra.sweeper.storage=postgresql://optuna:{DB_PASSWORD}@db.internal:5432/studies",
            "hydra.sweeper.storage='postgresql://optuna:***@db.internal:5432/studies'",
        ),
        (
            f"++hydra.sweeper.storage='mysql+pymysql://u:{DB_PASSWORD}@h/db'",
            "++hydra.sweeper.storage='mysql+pymysql://u:***@h/db'",
        ),
        # nothing to hide: kept exactly as given
        ("hydra.sweeper.storage=sqlite:////tmp/study.db", None),
        ("hydra.sweeper.storage=null", None),
        ("hydra.sweeper.n_trials=3", None),
    ],
)
def test_a_storage_override_is_saved_with_its_password_masked(
    override: str, saved: str | None
) -> None:
    from hydra_plugins.moe_optuna_sweeper._secrets import _masked_override

    assert _masked_override(override) == (saved or override)
