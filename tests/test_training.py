"""Training that a team can trust: resume after SIGKILL with the same final metrics, DDP on
two CPU processes, periodic checkpoints that load with weights_only=True, bf16 on CPU."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from pipelines.config import load_params
from pipelines.layout import Layout
from pipelines.training import logging_interval
from stages import augment, clean, ingest, profile
from tests.small import (
    REPO,
    data_stages_done,
    env,
    run_python,
    run_stage,
    small_params,
    stage_command,
)

# batches small enough that an epoch has steps to be killed in the middle of (about 30)
TRAINING = [
    "train.batch_size=128",
    "trainer.max_epochs=3",
    "callbacks.early_stopping.enabled=false",
    "callbacks.checkpoint.every_n_train_steps=7",
]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Params and a root with the data stages done, to copy for each training run."""
    return data_stages_done(tmp_path_factory.mktemp("prepared"), TRAINING)


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


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_sigkill_under_zero2_bf16_on_a_gpu_then_the_same_command_resumes(tmp_path: Path) -> None:
    """DeepSpeed's sharded checkpoint directory is what a GPU run leaves after a kill; the
    same command continues from it and ends where the uninterrupted run ends."""
    params = small_params(
        tmp_path / "params.yaml", TRAINING, groups=["strategy=deepspeed_zero2", "trainer=gpu"]
    )
    prepared_root = tmp_path / "prepared"
    cfg = load_params(params)
    for stage in (ingest, profile, clean, augment):
        stage.run(cfg, Layout(prepared_root))
    prepared = (params, prepared_root)
    uninterrupted = fresh_root(prepared, tmp_path / "uninterrupted")
    run_train(params, uninterrupted)
    killed = fresh_root(prepared, tmp_path / "killed")
    checkpoint = kill_at_first_checkpoint(params, killed)
    assert checkpoint.is_dir()  # DeepSpeed's partitioned checkpoint, not one file
    resumed = run_train(params, killed)
    assert "resuming from" in resumed.stdout
    metrics, curve = outcome(killed)
    expected_metrics, expected_curve = outcome(uninterrupted)
    assert [row["step"] for row in curve] == [row["step"] for row in expected_curve]
    # bf16 matmuls on a GPU are deterministic under Lightning's deterministic=True (cuBLAS
    # workspace config set), so the curves agree to float precision
    for got, want in zip(curve, expected_curve, strict=True):
        assert got["val_auprc"] == pytest.approx(want["val_auprc"], abs=1e-6)
        assert got["val_loss"] == pytest.approx(want["val_loss"], abs=1e-6)
    assert metrics["val"]["auprc"] == pytest.approx(expected_metrics["val"]["auprc"], abs=1e-6)


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
    run_train(params, root, "trainer.precision=bf16-mixed", "trainer.max_epochs=1")
    metrics = json.loads((root / "metrics" / "train.json").read_text())
    assert 0.0 <= metrics["val"]["auprc"] <= 1.0
    assert metrics["val"]["auroc"] > 0.5


# --- Lightning's own conventions: load_from_checkpoint, Trainer options, callbacks ----------


def test_a_checkpoint_from_the_train_stage_loads_with_load_from_checkpoint(tmp_path: Path) -> None:
    from pipelines.config import to_container
    from pipelines.lightning_module import RiskClassifier
    from pipelines.schema.model import ModelConfig
    from pipelines.schema.training import TrainConfig
    from pipelines.training import load_checkpoint, save_checkpoint

    module = RiskClassifier(
        n_features=3,
        feature_names=["a", "b", "c"],
        feature_mean=[0.0, 1.0, 2.0],
        feature_std=[1.0, 2.0, 3.0],
        model=to_container(ModelConfig()),  # the default MoE model
        train=to_container(TrainConfig()),
    ).eval()
    path = tmp_path / "model.ckpt"
    save_checkpoint(module, path, {"val_metrics": {"auprc": 0.5}})

    # what a Lightning user types, with the safe unpickler
    loaded = RiskClassifier.load_from_checkpoint(path, weights_only=True).eval()
    x = torch.randn(5, 3)
    with torch.no_grad():
        assert torch.equal(loaded(x), module(x))
        assert torch.equal(load_checkpoint(path)(x), module(x))  # the project's loader too
    assert loaded.hparams.feature_names == ["a", "b", "c"]


def test_trainer_options_and_callbacks_from_the_command_line_reach_lightning(
    prepared: tuple[Path, Path], tmp_path: Path
) -> None:
    # what lightning-hydra-template users type; `dvc repro` and train.py read the same keys
    from pipelines.lightning_module import RiskClassifier

    params, _ = prepared
    root = fresh_root(prepared, tmp_path / "options")
    done = run_train(
        params,
        root,
        "trainer.max_epochs=1",
        "+trainer.profiler=simple",
        "+callbacks.lr_monitor._target_=lightning.pytorch.callbacks.LearningRateMonitor",
        "+callbacks.lr_monitor.logging_interval=epoch",
    )
    log = done.stdout + done.stderr
    assert "FIT Profiler Report" in log  # the simple profiler ran
    # Lightning's model summary, as plain log lines (Hydra's train.log keeps them)
    assert "Trainable params" in log and "TabularClassifier" in log
    (metrics,) = (root / "outputs" / "train").glob("*/csv/version_0/metrics.csv")
    columns = pd.read_csv(metrics).columns
    assert any(c.startswith("lr-AdamW") for c in columns)  # the extra callback logged
    # the stage's checkpoint, the standard Lightning way
    module = RiskClassifier.load_from_checkpoint(root / "models" / "model.ckpt", weights_only=True)
    assert module.hparams.n_features > 0


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "+trainer.profilr=simple",
            "config key 'trainer.profilr' is neither in the schema nor an argument of "
            "lightning.pytorch.Trainer; did you mean trainer.profiler?",
        ),
        (
            "+trainer.logger=false",
            "config key 'trainer.logger' is set by the pipeline: loggers come from conf/logger/",
        ),
        (
            "+callbacks.lr_monitor._target_=lightning.pytorch.callbacks.LRMonitor",
            "config key 'callbacks.lr_monitor._target_' = "
            "'lightning.pytorch.callbacks.LRMonitor' does not import: expected a class such as "
            "lightning.pytorch.callbacks.LearningRateMonitor",
        ),
        (
            "+callbacks.lr_monitor._target_=pipelines.config.TrainConfig",
            "config key 'callbacks.lr_monitor._target_' = 'pipelines.config.TrainConfig' is not "
            "a lightning Callback class",
        ),
    ],
)
def test_a_bad_trainer_option_or_callback_is_one_line_before_any_work(
    tmp_path: Path, override: str, message: str
) -> None:
    done = run_stage("train", REPO / "params.yaml", tmp_path, override)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert not any(tmp_path.iterdir())  # nothing was written


def test_a_callback_argument_it_does_not_take_is_named_with_the_closest_one() -> None:
    from pipelines.errors import PipelineError

    overrides = [
        "+callbacks.lr_monitor._target_=lightning.pytorch.callbacks.LearningRateMonitor",
        "+callbacks.lr_monitor.logging_intervall=step",
    ]
    with pytest.raises(PipelineError, match="did you mean logging_interval"):
        load_params(REPO / "params.yaml", overrides)


def test_a_trainer_option_value_lightning_rejects_is_one_line_naming_the_key() -> None:
    from pipelines.errors import PipelineError
    from pipelines.training import _trainer

    cfg = load_params(REPO / "params.yaml", ["+trainer.profiler=simpel"])  # a valid key
    with pytest.raises(PipelineError) as caught:
        _trainer(cfg, dict(cfg.trainer.extra), accelerator="cpu", logger=False)
    message = str(caught.value)
    assert message.startswith("config keys trainer.profiler = 'simpel': lightning.Trainer: ")
    assert "'simple'" in message and "\n" not in message  # Lightning's list of choices


@pytest.mark.slow
def test_the_train_stage_with_a_wandb_key_and_no_network_trains_and_logs_offline(
    prepared: tuple[Path, Path], tmp_path: Path
) -> None:
    params, _ = prepared
    root = fresh_root(prepared, tmp_path / "offline")
    environment = {k: v for k, v in env().items() if k != "WANDB_MODE"}
    environment |= {
        "WANDB_API_KEY": "local-0123456789abcdef0123456789abcdef01234567",
        "WANDB_BASE_URL": "http://127.0.0.1:9",  # nothing listens there
        "WANDB_INIT_TIMEOUT": "3",
    }
    command = train_cmd(
        params,
        root,
        "trainer.max_epochs=1",
        "logger.wandb.enabled=true",
        "logger.wandb.mode=auto",  # online, since a key is set
        f"logger.wandb.dir={tmp_path / 'wandb'}",
    )
    done = subprocess.run(
        command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "CommError" not in done.stderr
    warnings = [line for line in done.stderr.splitlines() if "W&B online start failed" in line]
    assert len(warnings) == 1
    (run,) = (tmp_path / "wandb" / "wandb").glob("offline-run-*")
    assert b"val/auprc" in b"".join(p.read_bytes() for p in run.glob("*.wandb"))
    assert (root / "models" / "model.ckpt").is_file()


# what the subprocess below runs: import the training module, fit a tiny model, and print
# whether the process's warning filters are the ones it started with
FIT_AND_COMPARE_FILTERS = """
import json, sys, warnings
# the libraries' own filters, set when they are imported, are not the pipeline's doing
import lightning, numpy as np, torch
before = list(warnings.filters)
from pipelines.config import load_params
from pipelines.datamodule import TabularDataModule
from pipelines.training import fit_classifier
cfg = load_params(sys.argv[1], ["trainer.max_epochs=1", "logger.wandb.enabled=false"])
rng = np.random.default_rng(0)
def xy(rows):
    x = rng.normal(size=(rows, 4)).astype(np.float32)
    return x, (x[:, 0] + rng.normal(size=rows) > 1).astype(np.float32)
dm = TabularDataModule(xy(512), xy(128), ["a", "b", "c", "d"], 64, 128)
fit_classifier(cfg, dm, __import__("pathlib").Path(sys.argv[2]))
print(json.dumps({"unchanged": list(warnings.filters) == before}))
"""


def test_training_leaves_the_processs_warning_filters_as_it_found_them(tmp_path: Path) -> None:
    """Lightning's own noise is hidden while it fits (pipelines.training), not for the rest
    of a process that imports the training code: a user's library or notebook keeps its
    warnings."""
    params = small_params(tmp_path / "params.yaml")
    done = run_python("-c", FIT_AND_COMPARE_FILTERS, str(params), str(tmp_path / "work"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"unchanged": True}


SMALL_FIT = """
import sys
import numpy as np
from pipelines.config import load_params
from pipelines.datamodule import TabularDataModule
from pipelines.training import fit_classifier
overrides = ["trainer.max_epochs=2", "trainer.log_every_n_steps=50", "train.batch_size=64"]
cfg = load_params(sys.argv[1], overrides)
rng = np.random.default_rng(0)
def xy(rows):
    x = rng.normal(size=(rows, 4)).astype(np.float32)
    return x, (x[:, 0] + rng.normal(size=rows) > 1).astype(np.float32)
# 9 training batches of 64 rows, fewer than the configured interval of 50
dm = TabularDataModule(xy(576), xy(128), ["a", "b", "c", "d"], cfg.train.batch_size, 128)
fit_classifier(cfg, dm, __import__("pathlib").Path(sys.argv[2]))
"""


def test_a_small_run_logs_each_epoch_without_lightnings_logging_interval_warning(
    tmp_path: Path,
) -> None:
    params = small_params(tmp_path / "params.yaml")
    done = run_python("-W", "always", "-c", SMALL_FIT, str(params), str(tmp_path / "work"))
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout + done.stderr
    assert "smaller than the logging interval" not in output, output[-3000:]
    # the interval shrank to the epoch's 9 batches: each epoch logged its step loss
    (metrics,) = (tmp_path / "work").rglob("metrics.csv")
    steps = pd.read_csv(metrics).dropna(subset=["train/loss_step"])["step"].tolist()
    assert steps == [8, 17]


def test_the_logging_interval_is_the_configured_one_up_to_an_epochs_batches() -> None:
    assert logging_interval(20, 500) == 20
    assert logging_interval(20, 9) == 9
    assert logging_interval(20, 0) == 1


def test_the_loaders_fetch_whole_batches_with_the_rows_and_order_of_row_by_row_loading() -> None:
    """One indexing op per batch instead of per row (the host side of a GPU step); the batches
    are the ones TensorDataset and default_collate would give."""
    from torch.utils.data import BatchSampler, DataLoader, TensorDataset

    from pipelines.datamodule import TabularDataModule

    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 6)).astype(np.float32)
    y = (rng.random(1000) < 0.1).astype(np.float32)
    dm = TabularDataModule((x, y), (x[:300], y[:300]), [f"f{i}" for i in range(6)], 64, 128)
    row_by_row = DataLoader(
        TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
        batch_sampler=BatchSampler(dm.train_sampler, 64, drop_last=True),
    )
    batched = list(dm.train_dataloader())
    assert len(batched) == len(row_by_row) == 1000 // 64
    for (bx, by), (rx, ry) in zip(batched, row_by_row, strict=True):
        assert torch.equal(bx, rx) and torch.equal(by, ry)
    val = list(dm.val_dataloader())
    assert [len(b[1]) for b in val] == [128, 128, 44]
    assert torch.equal(torch.cat([b[0] for b in val]), torch.from_numpy(x[:300]))
