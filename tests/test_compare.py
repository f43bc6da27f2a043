"""`python -m pipelines.compare`: params that differ, metrics side by side and training curves
of run directories and DVC experiments, as HTML + PNG."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipelines import compare
from tests.small import REPO, env


def fake_run(root: Path, lr: float, auprc: float) -> Path:
    (root / ".hydra").mkdir(parents=True)
    (root / "metrics").mkdir()
    (root / "plots").mkdir()
    config = {"seed": 42, "train": {"lr": lr, "batch_size": 256}, "model": {"num_experts": 4}}
    (root / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    metrics = {"val": {"auprc": auprc, "auroc": 0.9}, "epochs_run": 2, "note": "text"}
    (root / "metrics" / "train.json").write_text(json.dumps(metrics))
    (root / "plots" / "train_history.csv").write_text(
        "epoch,step,val_auprc,val_loss\n0,10,0.2,0.3\n1,20," + f"{auprc},0.2\n"
    )
    return root


def test_two_run_directories_compare_side_by_side(tmp_path: Path) -> None:
    a = fake_run(tmp_path / "runs" / "a", 3e-3, 0.61)
    b = fake_run(tmp_path / "runs" / "b", 5e-4, 0.42)
    out = tmp_path / "report"
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.compare", str(a), str(b), "--out", str(out)],
        cwd=REPO,
        env=env(),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "train.lr" in done.stdout and "model.num_experts" not in done.stdout
    page = (out / "compare.html").read_text()
    assert "train.lr" in page and "<b>0.61</b>" in page  # best AUPRC marked
    assert "data:image/png;base64" in page
    assert (out / "curves.png").stat().st_size > 1000
    summary = json.loads((out / "compare.json").read_text())
    assert summary["params_that_differ"] == {
        "a": {"train.lr": "0.003"},
        "b": {"train.lr": "0.0005"},
    }
    assert summary["metrics"]["a"]["train.val.auprc"] == pytest.approx(0.61)
    assert "train.note" not in summary["metrics"]["a"]  # only numbers are metrics


def test_an_unknown_run_is_one_clear_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.compare", str(tmp_path), "--out", str(tmp_path / "o")],
        cwd=REPO,
        env=env(),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: compare: ") and "not a run directory" in done.stderr


# the shape `dvc exp show --json` (DVC 3.x) prints: workspace, the baseline commit, and its
# experiments nested under it (recorded from a real `dvc exp run` of this project, trimmed)
DVC_SHOW = [
    {
        "rev": "workspace",
        "name": None,
        "data": {
            "rev": "workspace",
            "params": {"params.yaml": {"data": {"train": {"lr": 0.0005}}}},
            "metrics": {"metrics/train.json": {"data": {"val": {"auprc": 0.42}}}},
        },
        "experiments": None,
    },
    {
        "rev": "85e12f7ba33a6bb86b56c34594c8901b4fec220a",
        "name": "master",
        "data": {
            "rev": "85e12f7ba33a6bb86b56c34594c8901b4fec220a",
            "params": {"params.yaml": {"data": {"train": {"lr": 0.003}}}},
            "metrics": {},
        },
        "experiments": [
            {
                "revs": [
                    {
                        "rev": "4d7f4da427bef7c70a0d271e40fbdc84a5baece2",
                        "name": "lr-3e-3",
                        "data": {
                            "rev": "4d7f4da427bef7c70a0d271e40fbdc84a5baece2",
                            "params": {"params.yaml": {"data": {"train": {"lr": 0.003}}}},
                            "metrics": {"metrics/train.json": {"data": {"val": {"auprc": 0.6034}}}},
                        },
                    }
                ]
            }
        ],
    },
]


def test_dvc_experiments_are_read_by_name_and_revision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake_show(*args, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.CompletedProcess(args, 0, stdout=json.dumps(DVC_SHOW), stderr="")

    monkeypatch.setattr(compare.subprocess, "run", fake_show)
    rows = compare.dvc_experiments(tmp_path)
    assert rows["lr-3e-3"]["metrics"] == {"train.val.auprc": 0.6034}
    assert rows["lr-3e-3"]["params"]["train.lr"] == 0.003
    assert rows["workspace"]["params"]["train.lr"] == 0.0005
    run = compare.from_dvc("4d7f4da", tmp_path, rows)  # a revision prefix works too
    assert run.metrics == {"train.val.auprc": 0.6034}
    assert run.notes and "no training curves" in run.notes[0]  # not in this fake repo
    with pytest.raises(compare.PipelineError, match="neither a run directory nor a DVC"):
        compare.from_dvc("nope", tmp_path, rows)
