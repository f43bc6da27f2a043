"""A tiny Hydra app for the sweeper's tests: no torch, runs in milliseconds per trial.

Its "training" reports `(x - 2)^2 + y` once per step through the sweep's trial contract (the
same call the Lightning pruning callback makes), so pruning, failures, NaN objectives, kills
and parallel workers can be exercised without training a model.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from hydra_plugins.moe_optuna_sweeper.trial import report


def hold_while(hold_file: str | None, job_number: int) -> None:
    """A trial after the first two waits while `hold_file` exists, so a test can kill the sweep
    mid-trial at a known point instead of racing a timer."""
    while hold_file and job_number >= 2 and Path(hold_file).exists():
        time.sleep(0.05)


@hydra.main(config_path=".", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | tuple[float, float]:
    out = Path(HydraConfig.get().runtime.output_dir)
    (out / "pid").write_text(str(os.getpid()))
    hold_while(os.environ.get("SWEEP_HOLD"), HydraConfig.get().job.num)
    x, y = float(cfg.x), float(cfg.y)
    if cfg.fail_above is not None and x > cfg.fail_above:
        raise ValueError(f"x = {x} > {cfg.fail_above}")
    value = (x - 2.0) ** 2 + y
    for step in range(cfg.steps):
        time.sleep(cfg.sleep)
        report(value + (cfg.steps - step), step)
    (out / "done").write_text(str(value))
    if cfg.nan_below is not None and x < cfg.nan_below:
        return float("nan")
    if cfg.objectives == 2:
        return value, abs(x)
    return value


if __name__ == "__main__":
    main()
