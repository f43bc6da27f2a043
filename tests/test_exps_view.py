"""`make exps`: `dvc exp show` narrowed to what fits a terminal (issue 29, item 10).

The plain table has a column for every param, every dependency's hash and every variant's
headline metrics (over 300). The view keeps the params that differ between the experiments and
the FP32 ONNX model's test scores. Tested on two commits of a clone whose params.yaml and
metrics/headline.json are the project's own, the second with another learning rate and other
scores: what two `dvc exp run`s differing in `-S train.lr` give (`-n 2` puts both rows in the
table without training twice).
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

from omegaconf import OmegaConf

from tests.small import REPO, committed_clone, env

WIDTH = 160


def second_experiment(clone: Path) -> None:
    params = OmegaConf.load(clone / "params.yaml")
    params.train.lr = params.train.lr / 2
    OmegaConf.save(params, clone / "params.yaml")
    headline = json.loads((clone / "metrics" / "headline.json").read_text())
    for metrics in headline["test"].values():
        for key in metrics:
            metrics[key] = round(metrics[key] * 0.97, 6)
    (clone / "metrics" / "headline.json").write_text(json.dumps(headline, indent=2))
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "lr / 2"],
        cwd=clone,
        check=True,
    )


def shown(command: str, clone: Path) -> str:
    # a terminal far wider than the table: what is measured is the table's own width, not
    # how rich squeezes it into a narrow one
    done = subprocess.run(
        command,
        shell=True,
        cwd=clone,
        env={**env(), "COLUMNS": "1000"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_make_exps_fits_160_columns_for_two_experiments_with_what_differs(
    tmp_path: Path,
) -> None:
    clone = committed_clone(tmp_path / "clone")
    second_experiment(clone)
    # the command `make exps` runs (its `setup` prerequisite, the venv, left out)
    recipe = subprocess.run(
        ["make", "-s", "-n", "-o", "setup", "exps", "EXPS_ARGS=-n 2"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert recipe.startswith("dvc exp show ")
    table = shown(recipe, clone)
    lines = [line.rstrip() for line in table.splitlines() if line.strip()]
    widest = max(len(line) for line in lines)
    assert widest <= WIDTH, table
    header = next(line for line in lines if "Experiment" in line).split()
    assert header[:2] == ["Experiment", "Created"]
    assert set(header[2:]) == {
        "test.onnx_fp32.auprc",
        "test.onnx_fp32.auroc",
        "test.onnx_fp32.f1",
        "train.lr",
    }
    lr = OmegaConf.load(REPO / "params.yaml").train.lr
    # the workspace and the second commit at lr / 2, the first at lr
    rows = [line for line in lines[1:] if "Experiment" not in line and "─" not in line]
    assert [str(lr / 2) in row for row in rows] == [True, True, False]
    assert str(lr) in rows[2]

    # the same two experiments without the view: the table the view exists for
    everything = shown(shlex.join(["dvc", "exp", "show", "--no-pager", "-n", "2", "--csv"]), clone)
    assert len(everything.splitlines()[0].split(",")) > 300
