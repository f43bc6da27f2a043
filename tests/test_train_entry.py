"""`python train.py` composes conf/, runs the pipeline into a Hydra run dir, returns the metric."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipelines.data.sources import german_credit_csv
from tests.small import REPO, SMALL_OVERRIDES, env


def train_py(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "train.py", *args], cwd=REPO, env=env(), capture_output=True, text=True
    )


def test_cfg_job_prints_the_config_without_importing_torch() -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "train.py", "--cfg", "job"],
        cwd=REPO,
        env=env(),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "optimized_metric: val/auprc" in done.stdout
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "torch" not in imported and "lightning" not in imported


@pytest.mark.slow
def test_experiment_with_overrides_trains_evaluates_and_returns_the_metric(tmp_path: Path) -> None:
    small = [o for o in SMALL_OVERRIDES if not o.startswith("trainer.max_epochs")]
    done = train_py(
        "+experiment=finance_risk", "trainer.max_epochs=2", *small, f"hydra.run.dir={tmp_path}"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "val/auprc = " in done.stdout
    output = done.stdout + done.stderr
    # a single-process run prints each line once, no distributed-setting warnings, and no
    # progress-bar redraws when its output is not a terminal
    assert output.count("Seed set to 42") == 1, output[-3000:]
    assert "sync_dist" not in output and "\r" not in output
    assert "epoch 1: train_loss_epoch" in output
    assert (tmp_path / "metrics" / "evaluate.json").is_file()
    assert (tmp_path / "export" / "model.onnx").is_file()
    assert (tmp_path / ".hydra" / "config.yaml").is_file()


@pytest.mark.slow
def test_a_users_csv_runs_through_the_pipeline_with_config_only(tmp_path: Path) -> None:
    table = pd.read_csv(german_credit_csv())
    table["defaulted"] = (table.pop("creditability") == "bad").astype(int)
    csv = tmp_path / "loans.csv"
    table.to_csv(csv, index=False)
    done = train_py(
        "data=my_table",
        f"data.source.path={csv}",
        "data.schema.label=defaulted",
        "data.schema.numeric=[duration_in_month,credit_amount,age_in_years]",
        "data.schema.categorical=[purpose,housing,job]",
        "model=dense_mlp",
        "train.batch_size=64",
        "trainer.max_epochs=3",
        "logger.wandb.enabled=false",
        "evaluate.latency_repeats=3",
        "quantize.static.calibration_rows=128",
        "export.parity_batch_sizes=[1,7,100]",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    features = (tmp_path / "run" / "data" / "clean" / "features.json").read_text()
    assert "purpose=" in features and "credit_amount" in features
