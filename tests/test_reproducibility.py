"""The reproducibility contract `make run` checks: identical on the same CPU kind and thread
count, within a declared tolerance across CPUs, and a clear failure beyond it."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

from pipelines.reproducibility import TOLERANCE, differences, verdict

REPO = Path(__file__).resolve().parents[1]
COMMITTED = json.loads((REPO / "metrics" / "headline.json").read_text())


def test_identical_figures_are_reported_as_identical() -> None:
    ok, message = verdict(COMMITTED, copy.deepcopy(COMMITTED))
    assert ok and "identical to the committed one" in message


def test_a_cross_cpu_difference_within_tolerance_passes_and_names_the_largest() -> None:
    now = copy.deepcopy(COMMITTED)
    # what another CPU's INT8 kernels did to the QAT row (observed: F1 0.7616 -> 0.7674)
    row = now["test"]["onnx_fp32"]
    row["f1"] = round(row["f1"] + 0.0058, 6)
    row["auprc"] = round(row["auprc"] + 2e-6, 6)
    ok, message = verdict(COMMITTED, now)
    assert ok, message
    assert "2 figure(s) differ" in message and "test.onnx_fp32.f1" in message


def test_a_figure_beyond_tolerance_fails_naming_it() -> None:
    now = copy.deepcopy(COMMITTED)
    now["test"]["onnx_fp32"]["auprc"] += TOLERANCE["auprc"] * 3
    ok, message = verdict(COMMITTED, now)
    assert not ok
    assert "test.onnx_fp32.auprc" in message and "beyond tolerance" in message


def test_a_variant_that_appears_or_vanishes_is_never_within_tolerance() -> None:
    now = copy.deepcopy(COMMITTED)
    now["test"]["onnx_new_variant"] = now["test"]["onnx_fp32"]
    (found,) = differences(COMMITTED, now)
    assert found.where == "test.onnx_new_variant" and not found.within


def run_check(checkout: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.reproducibility"],
        cwd=checkout,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_check_compares_the_workspace_with_git_head_as_make_run_calls_it(
    tmp_path: Path,
) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    headline = tmp_path / "metrics" / "headline.json"
    headline.parent.mkdir()
    headline.write_text(json.dumps(COMMITTED))
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "metrics"], check=True)
    same = run_check(tmp_path)
    assert same.returncode == 0 and "identical" in same.stdout
    moved = copy.deepcopy(COMMITTED)
    moved["test"]["onnx_fp32"]["auroc"] -= 0.1
    headline.write_text(json.dumps(moved))
    beyond = run_check(tmp_path)
    assert beyond.returncode == 1 and "test.onnx_fp32.auroc" in beyond.stdout
