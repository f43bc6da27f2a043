"""Training that a team can trust: resume after SIGKILL with the same final metrics, DDP on
two CPU processes, periodic checkpoints that load with weights_only=True, bf16 on CPU."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from pipelines.config import load_params
from pipelines.layout import Layout
from stages import augment, clean, ingest, profile
from tests.small import REPO, env, run_stage, small_params, stage_command

# small batches so an epoch has enough steps to be killed in the middle of
TRAINING = [
    "train.batch_size=64",
    "trainer.max_epochs=3",
    "callbacks.early_stopping.enabled=false",
    "callbacks.checkpoint.every_n_train_steps=7",
]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Params and a root with the data stages done, to copy for each training run."""
    params = small_params(tmp_path_factory.mktemp("params") / "params.yaml", TRAINING)
    cfg = load_params(params)
    root = tmp_path_factory.mktemp("prepared")
    for stage in (ingest, profile, clean, augment):
        stage.run(cfg, Layout(root))
    return params, root


def fresh_root(prepared: tuple[Path, Path], dest: Path) -> Path:
    shutil.copytree(prepared[1], dest)
    return dest


def train_cmd(params: Path, root: Path, *overrides: str) -> list[str]:
    return stage_command("train", params, root, *overrides)


def run_train(params: Path, root: Path, *overrides: str) -> subprocess.CompletedProcess:
    done = run_stage("train", params, root, *overrides, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def outcome(root: Path) -> tuple[dict, list[dict]]:
    """The train metrics and the validation curve. (The epoch mean of the train loss for the
    interrupted epoch only averages the batches after the resume, so it is left out.)"""
    metrics = json.loads((root / "metrics" / "train.json").read_text())
    history = pd.read_csv(root / "plots" / "train_history.csv")
    curve = history[["epoch", "step", "val_auprc", "val_auroc", "val_loss"]]
    return metrics, curve.to_dict("records")


def last_checkpoint(root: Path) -> Path | None:
    found = list((root / "outputs" / "train").glob("*/checkpoints/last.ckpt"))
    return found[0] if found else None


def kill_at_first_checkpoint(params: Path, root: Path) -> Path:
    """Start training, SIGKILL it as soon as a last.ckpt exists, return that checkpoint."""
    process = subprocess.Popen(
        train_cmd(params, root),
        cwd=REPO,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    checkpoint = None
    while time.monotonic() < deadline and process.poll() is None:
        checkpoint = last_checkpoint(root)
        if checkpoint is not None:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert checkpoint is not None, "training ended before its first step checkpoint"
    return checkpoint


@pytest.mark.slow
def test_sigkill_mid_epoch_then_the_same_command_ends_with_identical_metrics(
    prepared: tuple[Path, Path], tmp_path: Path
) -> None:
    params, _ = prepared
    uninterrupted = fresh_root(prepared, tmp_path / "uninterrupted")
    run_train(params, uninterrupted)

    killed = fresh_root(prepared, tmp_path / "killed")
    checkpoint = kill_at_first_checkpoint(params, killed)
    assert not (killed / "models" / "model.ckpt").exists()

    # what is on disk after the kill loads without unpickling code
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    # the kill came mid-epoch: the checkpoint is a step checkpoint inside an epoch
    steps_per_epoch = int(outcome(uninterrupted)[1][0]["step"])
    assert 0 < state["global_step"] < 3 * steps_per_epoch
    assert state["global_step"] % steps_per_epoch != 0

    resumed = run_train(params, killed)
    assert "resuming from" in resumed.stdout
    assert outcome(killed) == outcome(uninterrupted)
    # a finished run leaves nothing to resume: the next run with this config starts afresh
    assert last_checkpoint(killed) is None


@pytest.mark.slow
def test_without_resume_a_leftover_checkpoint_is_ignored(
    prepared: tuple[Path, Path], tmp_path: Path
) -> None:
    params, _ = prepared
    root = fresh_root(prepared, tmp_path / "run")
    kill_at_first_checkpoint(params, root)
    done = run_train(params, root, "callbacks.checkpoint.resume=false")
    assert "resuming" not in done.stdout
    assert json.loads((root / "metrics" / "train.json").read_text())["epochs_run"] == 3
    assert last_checkpoint(root) is None


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_agrees_on_the_validation_metric(
    prepared: tuple[Path, Path], tmp_path: Path
) -> None:
    params, _ = prepared
    root = fresh_root(prepared, tmp_path / "ddp")
    run_train(
        params,
        root,
        "strategy.name=ddp",
        "trainer.devices=2",
        "trainer.max_epochs=2",
    )
    ranks = sorted((root / "outputs" / "train").glob("*/ranks/rank*.json"))
    assert [p.name for p in ranks] == ["rank0.json", "rank1.json"]
    per_rank = [json.loads(p.read_text()) for p in ranks]
    assert per_rank[0]["auprc"] == pytest.approx(per_rank[1]["auprc"], abs=1e-7)
    assert per_rank[0]["auprc"] > 0.1
    # only rank 0 writes the stage's outputs
    metrics = json.loads((root / "metrics" / "train.json").read_text())
    assert metrics["val"]["auprc"] == pytest.approx(per_rank[0]["auprc"])


def test_bf16_mixed_precision_trains_on_cpu(prepared: tuple[Path, Path], tmp_path: Path) -> None:
    params, _ = prepared
    root = fresh_root(prepared, tmp_path / "bf16")
    run_train(
        params, root, "trainer.precision=bf16-mixed", "trainer.max_epochs=1"
    )
    metrics = json.loads((root / "metrics" / "train.json").read_text())
    assert 0.0 <= metrics["val"]["auprc"] <= 1.0
    assert metrics["val"]["auroc"] > 0.5
