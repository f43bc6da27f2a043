"""benchmarks/gpu.py, the script that measures strategies and precisions on a GPU, runs its
whole code path on the CPU at toy size (--smoke), so it is known to work before a GPU is lent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.small import run_python


@pytest.mark.slow
def test_the_gpu_benchmark_runs_its_code_path_on_a_cpu_at_toy_size(tmp_path: Path) -> None:
    out = tmp_path / "gpu_smoke.json"
    done = run_python(
        "benchmarks/gpu.py", "--smoke", "--runs", "ddp,moe_mlp,bf16-mixed", "--rows", "6000",
        "--batch-size", "128", "--epochs", "1", "--warmup", "2", "--out", str(out),
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    payload = json.loads(out.read_text())
    (run,) = payload["runs"]
    assert "error" not in run, run.get("error")
    assert (run["strategy"], run["model"], run["precision"]) == ("ddp", "moe_mlp", "bf16-mixed")
    assert run["timed_steps"] > 0 and run["step_ms_median"] > 0 and run["rows_per_s"] > 0
    assert 0.0 <= run["val_auprc"] <= 1.0
    assert "| ddp | moe_mlp | bf16-mixed |" in done.stdout
    assert "CPUExecutionProvider" in payload["inference_stack"]["onnxruntime_providers"]
