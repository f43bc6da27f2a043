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

`dvc repro` and `python -m stages.train` do not come through `pipeline_run`: their train stage
opens and finishes its own run (through `init_run` as well).

- online without a reachable W&B server (no network, a proxy, an outage): `init_run` waits at
  most `WANDB_INIT_TIMEOUT` seconds (default 30 here; W&B's own is 90), then logs the run
  offline with one warning line instead of ending the pipeline with W&B's CommError
- runs land in `<logger.wandb.dir>/wandb/offline-run-*` (W&B adds the `wandb/` folder), or
  `run-*` online. Under DVC a relative dir is taken from the DVC project root (DVC_ROOT):
  `dvc exp run --queue`/`--temp` run the stages in a temporary copy of the repository under
  .dvc/tmp/exps/, deleted afterwards with every untracked file in it, W&B's runs included
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import string
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra_plugins.moe_optuna_sweeper import trial as sweep_trial
from pipelines.config import PipelineConfig, to_container
from pipelines.layout import Layout
from pipelines.schema.training import WandbConfig

log = logging.getLogger(__name__)

_owned_run_ids: set[str] = set()
# seconds wandb.init may try to reach the server before the run falls back to offline
DEFAULT_INIT_TIMEOUT = 30.0
# set once an online start failed in this process: the next runs (in-process sweep trials) go
# offline at once instead of waiting for the timeout again
_unreachable: list[str] = []


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


def wandb_dir(configured: str) -> Path:
    """Where W&B writes (it adds `wandb/`): `logger.wandb.dir`, a relative one taken from the
    DVC project root when DVC runs the stage. DVC sets DVC_ROOT to the parent repository in a
    queued or temp experiment, whose own folder is deleted when the experiment ends."""
    path = Path(configured).expanduser()
    root = os.environ.get("DVC_ROOT")
    return Path(root) / path if root and not path.is_absolute() else path


def init_run(wb: WandbConfig, **identity: Any) -> Any:
    """wandb.init in the configured mode, under `wandb_dir`. An online run that cannot reach
    W&B is logged offline instead, with one warning line: losing tracking is not a reason to
    lose the training run (W&B would raise CommError after a 90 s wait)."""
    import wandb

    directory = wandb_dir(wb.dir)
    directory.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("WANDB_SILENT", "true")
    mode = wandb_mode(wb.mode)
    common = {"project": wb.project, "dir": str(directory), **identity}
    if mode == "online" and _unreachable:
        mode = "offline"  # W&B was unreachable earlier in this process (warned then)
    if mode != "online":
        return wandb.init(mode=mode, **common)
    timeout = float(os.environ.get("WANDB_INIT_TIMEOUT", DEFAULT_INIT_TIMEOUT))
    # our id, so that the files a failed online start leaves behind can be found and removed
    # (the offline run gets another: W&B keeps a failed id "in use" for the process)
    alphabet = string.ascii_lowercase + string.digits  # W&B's own ids: 8 of these
    run_id = "".join(secrets.choice(alphabet) for _ in range(8))
    settings = wandb.Settings(init_timeout=timeout)
    try:
        return wandb.init(mode=mode, id=run_id, settings=settings, **common)
    except wandb.errors.Error as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        # the failed start's run folder holds a run file `wandb sync` would try to upload
        for leftover in (directory / "wandb").glob(f"run-*-{run_id}"):
            shutil.rmtree(leftover, ignore_errors=True)
        log.warning(
            f"W&B online start failed ({reason}); logging offline to {directory / 'wandb'} "
            f"instead (upload later: wandb sync {directory / 'wandb'}/offline-run-*)"
        )
        _unreachable.append(reason)
        return wandb.init(mode="offline", **common)


@contextmanager
def pipeline_run(cfg: PipelineConfig, default_name: str) -> Iterator[Any | None]:
    """The W&B run of a whole pipeline run; None when W&B is disabled."""
    wb = cfg.logger.wandb
    if not wb.enabled or wb.mode == "disabled":
        yield None
        return
    run = init_run(
        wb,
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
    """The exported ONNX model, its model card and (text) tokenizer and label map as a W&B
    artifact of type `model`."""
    import wandb

    onnx = layout.export_dir / "model.onnx"
    if run is None or not onnx.is_file():
        return
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in name)
    artifact = wandb.Artifact(f"model-{safe}", type="model", description="exported ONNX model")
    artifact.add_file(str(onnx))
    # the card, and for a text model what scoring raw text needs besides the graph, so the
    # artifact alone scores what the export folder scores
    for name in ("model_card.json", "model_card.md", "tokenizer.json", "labels.json"):
        if (layout.export_dir / name).is_file():
            artifact.add_file(str(layout.export_dir / name))
    run.log_artifact(artifact)
