"""W&B needs no account by default and goes online only when the user gives it a key; without
a network it logs offline rather than failing the run, and DVC's queued experiments keep their
W&B runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.tracking import wandb_dir, wandb_mode
from tests.small import env


@pytest.fixture
def no_wandb_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    return monkeypatch


def test_auto_is_offline_without_a_key(no_wandb_env: pytest.MonkeyPatch) -> None:
    assert wandb_mode("auto") == "offline"


def test_auto_goes_online_when_a_key_is_set(no_wandb_env: pytest.MonkeyPatch) -> None:
    no_wandb_env.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_mode("auto") == "online"


def test_wandb_mode_in_the_environment_wins_over_auto(no_wandb_env: pytest.MonkeyPatch) -> None:
    no_wandb_env.setenv("WANDB_API_KEY", "x" * 40)
    no_wandb_env.setenv("WANDB_MODE", "offline")
    assert wandb_mode("auto") == "offline"


@pytest.mark.parametrize("mode", ["offline", "online", "disabled"])
def test_an_explicit_mode_is_kept(no_wandb_env: pytest.MonkeyPatch, mode: str) -> None:
    no_wandb_env.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_mode(mode) == mode


# --- no network, and DVC's temporary experiment workspaces ------------------------------

FAKE_KEY = "local-0123456789abcdef0123456789abcdef01234567"

# two runs in one process, as in-process sweep trials open them
OPEN_RUNS = """
from pipelines.schema.training import WandbConfig
from pipelines.tracking import init_run

for n in range(2):
    run = init_run(WandbConfig(mode="auto", dir="wandb_dir"), name=f"no-network-{n}")
    run.log({"loss": 0.5})
    run.finish()
"""


def test_an_unreachable_wandb_server_means_an_offline_run_and_one_warning(
    tmp_path: Path,
) -> None:
    # a key, so `auto` goes online; a server nothing listens on; a short bounded wait
    environment = {k: v for k, v in env().items() if k != "WANDB_MODE"}
    environment |= {
        "WANDB_API_KEY": FAKE_KEY,
        "WANDB_BASE_URL": "http://127.0.0.1:9",
        "WANDB_INIT_TIMEOUT": "3",
    }
    done = subprocess.run(
        [sys.executable, "-c", OPEN_RUNS],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("W&B online start failed (")
    assert "logging offline to" in lines[0] and "wandb sync" in lines[0]
    runs = tmp_path / "wandb_dir" / "wandb"
    offline = sorted(runs.glob("offline-run-*"))
    assert len(offline) == 2 and all(list(run.glob("run-*.wandb")) for run in offline)
    # the failed online start left no half run behind for `wandb sync` to upload
    assert not list(runs.glob("run-*"))
    leaked = [p for p in tmp_path.rglob("*") if p.is_file() and FAKE_KEY.encode() in p.read_bytes()]
    assert leaked == []


def test_a_relative_wandb_dir_is_taken_from_the_dvc_project_root(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DVC_ROOT", raising=False)
    assert wandb_dir("outputs/wandb") == Path("outputs/wandb")  # train.py, a plain stage run
    # DVC sets DVC_ROOT to the repository a queued/temp experiment was started from
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    assert wandb_dir("outputs/wandb") == tmp_path / "outputs" / "wandb"
    assert wandb_dir("/abs/wandb") == Path("/abs/wandb")


STAGE = """
import sys
from pipelines.schema.training import WandbConfig
from pipelines.tracking import init_run

run = init_run(WandbConfig(mode="offline", dir="outputs/wandb"), name="queued-" + sys.argv[1])
run.log({"value": float(sys.argv[1])})
run.finish()
open("metrics.json", "w").write('{"value": %s}' % sys.argv[1])
"""

DVC_YAML = """
stages:
  track:
    cmd: python track.py ${value}
    deps: [track.py]
    params: [value]
    metrics:
      - metrics.json:
          cache: false
"""


@pytest.mark.slow
def test_a_queued_dvc_experiment_keeps_its_wandb_run(tmp_path: Path) -> None:
    # `dvc exp run --queue` runs the stages in a temporary copy of the repository
    # (.dvc/tmp/exps/...) and deletes it with every untracked file: W&B's runs went with it
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "track.py").write_text(STAGE)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / "params.yaml").write_text("value: 1\n")
    (repo / ".gitignore").write_text("outputs/\n")

    def run(*command: str) -> None:
        done = subprocess.run(command, cwd=repo, env=env(), capture_output=True, text=True)
        assert done.returncode == 0, (done.stdout + done.stderr)[-2000:]

    run("git", "init", "-q")
    # in the repository's config: DVC commits each experiment with it too
    run("git", "config", "user.name", "t")
    run("git", "config", "user.email", "t@t")
    run("dvc", "init", "-q")
    run("git", "add", "-A")
    run("git", "commit", "-q", "-m", "stage")
    run("dvc", "exp", "run", "--queue", "-S", "value=2")
    run("dvc", "exp", "run", "--run-all")

    (offline,) = (repo / "outputs" / "wandb" / "wandb").glob("offline-run-*")
    assert b"queued-2" in b"".join(p.read_bytes() for p in offline.glob("*.wandb"))
