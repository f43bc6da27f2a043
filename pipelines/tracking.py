"""One W&B run per `train.py` invocation (per sweep trial inside a sweep), opened before the
first stage and finished after the last, so the training curves, the resolved config and the
exported ONNX model (a W&B artifact) end up in the same run.

- `logger.wandb.mode=auto` (default): online when `WANDB_API_KEY` is set, offline otherwise
  (`online`/`offline` force it); the key is never passed in code, never put in a config,
  and W&B keeps it out of the run files (tests/test_sweeps.py greps every file a run writes)
- in a sweep: group = the study name (unless `logger.wandb.group` is set), run name
  `<study>-trial-<n>`, tags `sweep` and `trial-<n>`, config key `optuna` with the trial's params
- Lightning's WandbLogger (pipelines/training.py) attaches to this run instead of opening its
  own; `training._finish_wandb` leaves a run it did not open alone.

`dvc repro` and `python -m stages.train` do not come through here: their train stage opens and
finishes its own run as before.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra_plugins.moe_optuna_sweeper import trial as sweep_trial
from pipelines.config import PipelineConfig, to_container
from pipelines.layout import Layout

_owned_run_ids: set[str] = set()


def owns_run(run: Any) -> bool:
    """True for a run opened by `pipeline_run` (it outlives the train stage)."""
    return getattr(run, "id", None) in _owned_run_ids


def run_identity(cfg: PipelineConfig, default_name: str) -> dict[str, Any]:
    """name, group, tags, job_type and config of the run for this process."""
    wb = cfg.logger.wandb
    config = to_container(cfg)
    ctx = sweep_trial.context()
    if ctx is None:
        return {
            "name": default_name,
            "group": wb.group,
            "tags": list(wb.tags),
            "job_type": "pipeline",
            "config": config,
        }
    trial = sweep_trial.current_trial()
    config["optuna"] = {
        "study": ctx.study_name,
        "trial": ctx.number,
        "params": dict(trial.params) if trial is not None else {},
    }
    return {
        "name": f"{ctx.study_name}-trial-{ctx.number}",
        "group": wb.group or ctx.study_name,
        "tags": [*wb.tags, "sweep", f"trial-{ctx.number}"],
        "job_type": "sweep-trial",
        "config": config,
    }


def wandb_mode(mode: str) -> str:
    """`auto`: online when the user has given W&B a key (WANDB_API_KEY), offline otherwise;
    WANDB_MODE, W&B's own switch, wins when set."""
    if mode != "auto":
        return mode
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    return "online" if os.environ.get("WANDB_API_KEY") else "offline"


@contextmanager
def pipeline_run(cfg: PipelineConfig, default_name: str) -> Iterator[Any | None]:
    """The W&B run of a whole pipeline run; None when W&B is disabled."""
    wb = cfg.logger.wandb
    if not wb.enabled or wb.mode == "disabled":
        yield None
        return
    import wandb

    Path(wb.dir).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("WANDB_SILENT", "true")
    run = wandb.init(
        project=wb.project,
        mode=wandb_mode(wb.mode),
        dir=wb.dir,
        # a run left open by an earlier in-process trial is closed, not continued
        reinit="finish_previous",
        **run_identity(cfg, default_name),
    )
    _owned_run_ids.add(run.id)
    try:
        yield run
    except BaseException as err:
        import optuna

        pruned = isinstance(err, optuna.TrialPruned)
        run.summary["optuna/state"] = "PRUNED" if pruned else "FAILED"
        run.finish(exit_code=0 if pruned else 1)
        raise
    else:
        run.finish()
    finally:
        _owned_run_ids.discard(run.id)


def log_model_artifact(run: Any, layout: Layout, name: str) -> None:
    """The exported ONNX model and its model card as a W&B artifact of type `model`."""
    import wandb

    onnx = layout.export_dir / "model.onnx"
    if run is None or not onnx.is_file():
        return
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in name)
    artifact = wandb.Artifact(f"model-{safe}", type="model", description="exported ONNX model")
    artifact.add_file(str(onnx))
    for card in ("model_card.json", "model_card.md"):
        if (layout.export_dir / card).is_file():
            artifact.add_file(str(layout.export_dir / card))
    run.log_artifact(artifact)
