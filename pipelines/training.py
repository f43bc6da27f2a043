"""Builds the Lightning Trainer from config, fits (resuming after a kill), and writes a
weights-only checkpoint."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import pickle
import shutil
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import (
    Callback,
    EarlyStopping,
    ModelCheckpoint,
    ModelSummary,
    TQDMProgressBar,
)
from lightning.pytorch.loggers import CSVLogger, Logger

from pipelines.config import PipelineConfig, to_container
from pipelines.datamodule import TabularDataModule, feature_statistics
from pipelines.lightning_module import MoEClassifierBase, RiskClassifier
from pipelines.lightning_options import build_callbacks
from pipelines.progress import epoch_line
from pipelines.strategy import build_strategy, peers_or_one_line
from pipelines.torch_files import load_weights, refused, weights_only_loads
from pipelines.tracking import init_run

ModuleT = TypeVar("ModuleT", bound=MoEClassifierBase)

CHECKPOINT_FORMAT = "moe-pipelines/checkpoint-v1"


@dataclass
class FitResult:
    module: MoEClassifierBase  # RiskClassifier, or what build_module made
    best_score: float
    epochs_run: int
    history: list[dict[str, float]]
    global_rank: int
    resumed_from: str | None
    trained_weights_sha256: str  # the weights as training left them on this rank
    process_group_size: int  # ranks that averaged gradients (1: a single process)


class EpochHistory(Callback):
    """Epoch-level metrics, for the DVC plot of the training curves; kept in checkpoints so a
    resumed run still has the epochs before the kill."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.rows = list(state_dict["rows"])

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        # runs after the epoch's validation loop, so val metrics are this epoch's
        row = {"epoch": float(trainer.current_epoch), "step": float(trainer.global_step)}
        row |= epoch_metrics(trainer)
        self.rows.append(row)
        if not _interactive() and trainer.is_global_zero:
            # no progress bar off a terminal (dvc repro's log, CI): one line per epoch instead
            shown = {k: v for k, v in row.items() if k not in ("epoch", "step")}
            print(epoch_line(int(row["epoch"]), shown), flush=True)


def epoch_metrics(trainer: L.Trainer) -> dict[str, float]:
    """The epoch's train loss and every validation metric the module logs (AUROC/AUPRC for
    tables, accuracy and macro-F1 for text), the losses first; `/` written as `_`."""
    metrics = trainer.callback_metrics
    others = sorted(k for k in metrics if k.startswith("val/") and k != "val/loss")
    return {
        key.replace("/", "_"): float(metrics[key])
        for key in ("train/loss_epoch", "val/loss", *others)
        if key in metrics
    }


def _one_console_handler() -> None:
    """The `lightning` package gives its logger a console handler of its own and lets it
    propagate; under Hydra the root logger has a console handler too, so every Lightning line
    was printed twice. Keep the root's, which also writes Hydra's run log."""
    if logging.getLogger().hasHandlers():
        lightning_logger = logging.getLogger("lightning")
        for handler in list(lightning_logger.handlers):
            if type(handler) is logging.StreamHandler:
                lightning_logger.removeHandler(handler)


_one_console_handler()


@contextmanager
def _lightning_noise_silenced(single_process: bool) -> Iterator[None]:
    """Warnings about Lightning's own internals, hidden while it fits and no longer: the
    filters are scoped, so the caller's warning filters are as they were afterwards."""
    with warnings.catch_warnings():
        # torch 2.13 deprecates a pytree class Lightning still checks for, once per fit
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
        if single_process:
            # the world-size-1 process group made for DeepSpeed's MoE layer makes Lightning
            # warn about syncing epoch values "in distributed setting"; one process has
            # nothing to sync
            warnings.filterwarnings("ignore", message=r".*logging on epoch level in distributed")
        yield


def _interactive() -> bool:
    """A terminal to redraw a progress bar on; in a pipe or log file each redraw is a line."""
    return sys.stderr.isatty()


class ResumePoint(Callback):
    """What an exact resume needs beyond Lightning's checkpoint.

    The train sampler's place in its epoch goes into the checkpoint. Randomness in a step
    (dropout, the MoE gate's 2nd-expert sampling) is drawn from a generator seeded by
    (seed, rank, epoch, batch) at each batch start: restoring the global RNG state instead is
    not enough, because Lightning draws from it outside the steps (first-use setup runs
    inside its isolated sanity check in a fresh run, but in the first step of a resumed one).
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_batch_start(
        self, trainer: L.Trainer, module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        entropy = (self.seed, trainer.global_rank, trainer.current_epoch, batch_idx)
        torch.manual_seed(int(np.random.SeedSequence(entropy).generate_state(1)[0]))

    def on_save_checkpoint(
        self, trainer: L.Trainer, module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        progress = trainer.fit_loop.epoch_loop.batch_progress.current
        checkpoint["resume_point"] = {
            "epoch": trainer.current_epoch,
            "batches_done": progress.processed,
        }

    def on_load_checkpoint(
        self, trainer: L.Trainer, module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        point = checkpoint.get("resume_point")
        dm = trainer.datamodule  # type: ignore[attr-defined]
        if point is not None and point["batches_done"] < trainer.num_training_batches:
            dm.train_sampler.resume_at = (point["epoch"], point["batches_done"] * dm.batch_size)


def run_fingerprint(cfg: PipelineConfig, inputs: list[Path]) -> str:
    """What makes two training runs the same run: every config key that reaches training and
    the bytes of its inputs. Resuming only ever continues a run with the same fingerprint."""
    sections = ("data", "model", "strategy", "trainer", "train", "callbacks")
    settings = {name: to_container(getattr(cfg, name)) for name in sections} | {"seed": cfg.seed}
    # whether to resume is a choice about this run, not part of what the run is
    del settings["callbacks"]["checkpoint"]["resume"]
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for path in inputs:
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if file.is_file():
                digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def fit_classifier(
    cfg: PipelineConfig,
    dm: TabularDataModule,
    work_dir: Path,
    run_name: str = "train",
    build_module: Callable[[], MoEClassifierBase] | None = None,
) -> FitResult:
    """Fit in `work_dir`; if it holds a last.ckpt of an interrupted run, continue from it.

    `build_module`: makes the modality's LightningModule (pipelines/modalities/text/lightning.py for
    text); None builds the tabular RiskClassifier from `dm`'s features. It is called after
    the seed is set, so the initial weights follow cfg.seed either way."""
    L.seed_everything(cfg.seed, workers=True)
    x_train, y_train = dm.train_xy
    if build_module is not None:
        module = build_module()
    else:
        mean, std = feature_statistics(x_train)
        module = RiskClassifier(
            n_features=len(dm.features),
            feature_names=list(dm.features),
            feature_mean=mean,
            feature_std=std,
            model=to_container(cfg.model),
            train=to_container(cfg.train),
            pos_weight=_pos_weight(cfg.train.pos_weight, y_train),
        )
    # the schedule's length from the data, not trainer.estimated_stepping_batches: reading
    # that in configure_optimizers makes Lightning set up the data before it restores a
    # checkpoint (Lightning issue #20550)
    world = cfg.trainer.devices * cfg.trainer.num_nodes
    batches_per_epoch = max(len(x_train) // world // cfg.train.batch_size, 1)
    limit = _batch_limit(cfg.trainer.limit_train_batches)
    if isinstance(limit, int):
        batches_per_epoch = min(batches_per_epoch, limit)
    else:
        batches_per_epoch = max(int(batches_per_epoch * limit), 1)
    module.offload_optimizer = cfg.strategy.offloads_optimizer
    module.total_steps = (
        math.ceil(batches_per_epoch / cfg.trainer.accumulate_grad_batches) * cfg.trainer.max_epochs
    )
    ckpt = cfg.callbacks.checkpoint
    checkpoint_dir = work_dir / "checkpoints"
    checkpoint = ModelCheckpoint(
        dirpath=checkpoint_dir,
        filename="best",
        monitor=ckpt.monitor,
        mode=ckpt.mode,
        save_last=True,
    )
    history = EpochHistory()
    callbacks: list[Callback] = [
        checkpoint,
        history,
        ResumePoint(cfg.seed),
    ]
    show_progress_bar = cfg.trainer.enable_progress_bar and _interactive()
    if show_progress_bar:
        callbacks.append(TQDMProgressBar(refresh_rate=20))
    if ckpt.every_n_train_steps > 0:
        callbacks.append(
            ModelCheckpoint(
                dirpath=checkpoint_dir,
                filename="step",
                every_n_train_steps=ckpt.every_n_train_steps,
                save_last=True,
            )
        )
    stopping = cfg.callbacks.early_stopping
    if stopping.enabled:
        callbacks.append(
            EarlyStopping(monitor=stopping.monitor, mode=stopping.mode, patience=stopping.patience)
        )
    # --- Optuna sweep trial: report val metric per epoch, prune (pipelines/sweeps/pruning.py)
    from pipelines.sweeps.pruning import pruning_callback

    if (pruning := pruning_callback(cfg)) is not None:
        callbacks.append(pruning)
    # ---
    # the user's own (`+callbacks.<name>._target_=...`), checked by validate()
    callbacks.extend(build_callbacks(cfg.callbacks.extra))
    extra = dict(cfg.trainer.extra)
    if extra.pop("enable_model_summary", True) and not any(
        isinstance(c, ModelSummary) for c in callbacks
    ):
        # Lightning's own default is RichModelSummary when rich is installed, which prints to
        # the terminal only; ModelSummary logs, so the table is in Hydra's and DVC's train log
        callbacks.append(ModelSummary(max_depth=1))
    t = cfg.trainer
    trainer = _trainer(
        cfg,
        extra,
        accelerator=t.accelerator,
        strategy=build_strategy(cfg),
        devices=t.devices,
        num_nodes=t.num_nodes,
        # ResumableSampler splits the data between ranks itself
        use_distributed_sampler=False,
        precision=t.precision,
        max_epochs=cfg.trainer.max_epochs,
        accumulate_grad_batches=t.accumulate_grad_batches,
        gradient_clip_val=t.gradient_clip_val,
        deterministic=t.deterministic,
        log_every_n_steps=logging_interval(t.log_every_n_steps, batches_per_epoch),
        limit_train_batches=limit,
        enable_progress_bar=show_progress_bar,
        default_root_dir=work_dir,
        logger=build_loggers(cfg, work_dir, run_name),
        callbacks=callbacks,
        # the ModelSummary callback above does it (Lightning would add a second one)
        enable_model_summary=False,
    )
    last = checkpoint_dir / "last.ckpt"
    resume_from = str(last) if ckpt.resume and last.exists() else None
    if resume_from:
        print(f"train: resuming from {resume_from}", flush=True)
    # a resume reads last.ckpt (and under DeepSpeed, DeepSpeed's own files) weights-only too
    resuming = weights_only_loads() if resume_from else nullcontext()
    with (
        _lightning_noise_silenced(single_process=t.devices * t.num_nodes == 1),
        resuming,
        peers_or_one_line(cfg),
    ):
        trainer.fit(module, datamodule=dm, ckpt_path=resume_from, weights_only=True)
    trained = weights_sha256(module)
    group_size = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    if checkpoint.best_model_path:
        module = with_weights(module, _best_state_dict(Path(checkpoint.best_model_path), work_dir))
    best_score = checkpoint.best_model_score
    for logger in trainer.loggers:
        logger.finalize("success")
    _finish_wandb()
    return FitResult(
        module=module.eval(),
        best_score=float(best_score) if best_score is not None else float("nan"),
        epochs_run=trainer.current_epoch,
        history=history.rows,
        global_rank=trainer.global_rank,
        resumed_from=resume_from,
        trained_weights_sha256=trained,
        process_group_size=group_size,
    )


def weights_sha256(module: torch.nn.Module) -> str:
    """A digest of a module's parameters and buffers: equal on every DDP rank exactly when
    the ranks' gradient averaging kept their weights in step."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        raw = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8)  # any dtype
        digest.update(raw.numpy().tobytes())
    return digest.hexdigest()


def logging_interval(configured: int, batches_per_epoch: int) -> int:
    """Steps between per-step logs: the configured interval, but never more than an epoch's
    batches, so a small dataset still logs every epoch (and Lightning does not warn that "the
    number of training batches is smaller than the logging interval" on every small run)."""
    return max(1, min(configured, batches_per_epoch))


def _trainer(cfg: PipelineConfig, extra: dict[str, Any], **settings: Any) -> L.Trainer:
    """The Trainer from the pipeline's settings plus the user's `trainer.extra` options. A
    value Lightning rejects in those options is the user's config error, one line; without
    them, an error is the pipeline's own."""
    try:
        return L.Trainer(**(settings | extra))
    except Exception as err:
        if not extra and not cfg.callbacks.extra:
            raise
        from pipelines.errors import PipelineError

        options = ", ".join(
            [f"trainer.{k} = {v!r}" for k, v in extra.items()]
            + [f"callbacks.{k}" for k in cfg.callbacks.extra]
        )
        reason = " ".join(str(err).split())
        raise PipelineError(f"config keys {options}: lightning.Trainer: {reason}") from None


def _best_state_dict(path: Path, work_dir: Path) -> dict[str, torch.Tensor]:
    if path.is_dir() and any(path.glob("*/layer_*_expert_*_model_states.pt")):
        return deepspeed_moe_state_dict(path)
    if path.is_dir():
        # DeepSpeed saves a directory of partitioned shards; gather them into one file first
        from lightning.pytorch.utilities.deepspeed import (
            convert_zero_checkpoint_to_fp32_state_dict,
        )

        single = work_dir / "best-fp32.ckpt"
        # the converter passes weights_only=False to torch.load: made weights-only here
        try:
            with weights_only_loads():
                convert_zero_checkpoint_to_fp32_state_dict(path, single)
        except pickle.UnpicklingError as err:
            raise refused(path, err) from None
        path = single
    return load_weights(path)["state_dict"]


def with_weights(module: ModuleT, state: dict[str, torch.Tensor]) -> ModuleT:
    """The module holding `state`. ZeRO-3 leaves the trained module's partitioned parameters
    empty on every rank (shape [0], the shards live in DeepSpeed's buffers; seen on an H200 for
    every parameter above stage3_param_persistence_threshold), so the weights go into a fresh
    module built from the same hyperparameters."""
    if any(hasattr(p, "ds_id") for p in module.parameters()):
        module = type(module)(**module.hparams)
    module.load_state_dict(state)
    return module


def deepspeed_moe_state_dict(checkpoint_dir: Path) -> dict[str, torch.Tensor]:
    """The model's weights from a DeepSpeed checkpoint of an MoE model, in float32.

    DeepSpeed's zero_to_fp32 (what Lightning's converter calls) refuses these: it takes every
    `*_model_states.pt` for a rank's model state, the per-expert files included ("is not a
    model state checkpoint", seen on an H200). MoE trains under ZeRO 1/2 only, where every
    rank holds the whole module: its state is `mp_rank_00_model_states.pt` and each expert's
    weights are in their own file, keyed by the expert's global index. Under bf16 the module
    holds bf16 weights (the ones validation scored); they come back as float32.
    """
    (tag_dir,) = {p.parent for p in checkpoint_dir.glob("*/mp_rank_00_model_states.pt")}
    # tensors and plain data only (DeepSpeed 0.19's config there is a plain dict): a file that
    # names any other Python object is refused before it runs
    state = load_weights(tag_dir / "mp_rank_00_model_states.pt")["module"]
    for expert_file in sorted(tag_dir.glob("layer_*_expert_*_mp_rank_00_model_states.pt")):
        state.update(load_weights(expert_file))
    # Lightning's DeepSpeed wrapper prefixes the LightningModule's own keys
    return {key.removeprefix("_forward_module."): value.float() for key, value in state.items()}


def finish_run(work_dir: Path) -> None:
    """Drop the resume checkpoints of a finished run, so the same command trains afresh
    instead of "resuming" a run that ended (early stopping's stop is not in the checkpoint)."""
    shutil.rmtree(work_dir / "checkpoints", ignore_errors=True)


def _batch_limit(value: float) -> int | float:
    """Lightning reads a float as a fraction of the epoch and an int as a batch count."""
    return int(value) if value > 1 else value


def _pos_weight(setting: Any, y_train) -> float | None:
    if setting is None:
        return None
    if setting == "auto":
        positives = float(y_train.sum())
        return float((len(y_train) - positives) / max(positives, 1.0))
    return float(setting)


def build_loggers(cfg: PipelineConfig, work_dir: Path, run_name: str) -> list[Logger]:
    loggers: list[Logger] = []
    if cfg.logger.csv:
        loggers.append(CSVLogger(save_dir=work_dir, name="csv", version=0))
    wb = cfg.logger.wandb
    if wb.enabled and wb.mode != "disabled":
        import wandb
        from lightning.pytorch.loggers import WandbLogger
        from lightning.pytorch.utilities import rank_zero_only

        run = None
        if rank_zero_only.rank == 0:  # other ranks log nothing (WandbLogger's own rule)
            # train.py's run for the whole pipeline (pipelines/tracking.py), else this stage's
            # own, opened here rather than by WandbLogger so that it falls back to offline
            run = wandb.run or init_run(
                wb,
                name=run_name,
                group=wb.group,
                tags=list(wb.tags),
                # the resolved config holds no secret: the API key only ever comes from the env
                config=to_container(cfg),
            )
        loggers.append(WandbLogger(experiment=run, project=wb.project, log_model=False))
    return loggers


def _finish_wandb() -> None:
    import sys

    if "wandb" in sys.modules:
        import wandb

        # a run opened by train.py for the whole pipeline (pipelines/tracking.py) stays open
        # for the export artifact; train.py finishes it
        from pipelines.tracking import owns_run

        if wandb.run is not None and not owns_run(wandb.run):
            wandb.finish()


def drop_other_runs(train_work: Path, keep: str) -> None:
    """Checkpoints of runs with another config or other inputs can never be resumed."""
    if train_work.is_dir():
        for child in train_work.iterdir():
            if child.is_dir() and child.name != keep:
                shutil.rmtree(child, ignore_errors=True)


def write_history(rows: list[dict[str, float]], path: Path) -> None:
    columns = sorted({key for row in rows for key in row}, key=lambda k: (k != "epoch", k))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns or ["epoch"])
        writer.writeheader()
        writer.writerows(rows)


def save_checkpoint(module: MoEClassifierBase, path: Path, extra: dict[str, Any]) -> None:
    """Weights and plain hyperparameters only: loadable with torch.load(weights_only=True),
    and the standard Lightning way, `RiskClassifier.load_from_checkpoint(path,
    weights_only=True)`, which needs the Lightning version key (it picks checkpoint migrations
    by it) besides `state_dict` and `hyper_parameters`."""
    torch.save(
        {
            "format": CHECKPOINT_FORMAT,
            "pytorch-lightning_version": L.__version__,
            "hyper_parameters": dict(module.hparams),
            "state_dict": module.state_dict(),
            **extra,
        },
        path,
    )


def read_checkpoint(path: Path, modality: str) -> dict[str, Any]:
    """The train stage's checkpoint payload, loaded weights-only (no pickle: a checkpoint from
    elsewhere cannot run code), after checking the train stage wrote it for `modality`."""
    from pipelines.errors import PipelineError

    if not path.is_file():
        raise PipelineError(f"{path}: missing model checkpoint (run the train stage first)")
    payload = load_weights(path)
    written_for = payload.get("modality", "tabular")
    if payload.get("format") != CHECKPOINT_FORMAT or written_for != modality:
        raise PipelineError(
            f"{path}: not a {modality} model's checkpoint written by the train stage (it holds "
            f"a {written_for} one; rerun train with data.modality = {modality})"
        )
    return payload


def load_checkpoint(path: Path) -> RiskClassifier:
    from pipelines.errors import PipelineError

    payload = read_checkpoint(path, "tabular")
    try:
        # the model's `_target_` and `args` are in its hyperparameters: a user's own class is
        # imported again here, from PYTHONPATH
        module = RiskClassifier(**payload["hyper_parameters"])
    except PipelineError as err:
        raise PipelineError(f"{path}: {err}") from None
    module.load_state_dict(payload["state_dict"])
    return module.eval()
