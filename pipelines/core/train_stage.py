"""The train stage's course, the same for every modality: fit in a work dir keyed by (config,
inputs), so rerunning the same thing after a kill resumes it; each rank's validation figures
(for checking that DDP ranks agree); rank 0 publishes checkpoint, metrics and history
together. A modality supplies its data module, its module builder and how it validates."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipelines.config import PipelineConfig
from pipelines.datamodule import TabularDataModule
from pipelines.io import staged_outputs, write_json
from pipelines.layout import Layout
from pipelines.lightning_module import MoEClassifierBase
from pipelines.models.moe import count_parameters
from pipelines.training import (
    drop_other_runs,
    finish_run,
    fit_classifier,
    run_fingerprint,
    save_checkpoint,
    write_history,
)


def train_and_publish(
    cfg: PipelineConfig,
    layout: Layout,
    datamodule: TabularDataModule,
    validate: Callable[[Any], dict[str, float]],
    build_module: Callable[[], MoEClassifierBase] | None = None,
    facts: dict[str, Any] | None = None,
    checkpoint_extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Fit, validate (`validate(module)` -> the val figures), and publish: the checkpoint
    (with the val figures and `checkpoint_extra`, e.g. the tokenizer that makes a text model
    usable), metrics/train.json (with the modality's `facts`) and the history."""
    inputs = [layout.augmented_train, layout.cleaned]
    work_dir = layout.train_work / run_fingerprint(cfg, inputs)
    drop_other_runs(layout.train_work, keep=work_dir.name)
    run_name = f"{cfg.data.name}-{cfg.model.name}"
    result = fit_classifier(cfg, datamodule, work_dir, run_name=run_name, build_module=build_module)
    val = validate(result.module)
    # the weights as training left them, before the best checkpoint (rank 0's file) is loaded
    trained = {
        "trained_weights_sha256": result.trained_weights_sha256,
        "process_group_size": result.process_group_size,
    }
    write_json(work_dir / "ranks" / f"rank{result.global_rank}.json", {**val, **trained})
    if result.global_rank != 0:
        return {"val": val}
    metrics = {
        "val": val,
        "epochs_run": result.epochs_run,
        "parameters": count_parameters(result.module.model),
        **(facts or {}),
    }
    outputs = (layout.checkpoint, layout.train_metrics, layout.train_history)
    with staged_outputs(layout.staging, *outputs) as (ckpt, metrics_file, history):
        save_checkpoint(result.module, ckpt, {"val_metrics": val, **(checkpoint_extra or {})})
        write_json(metrics_file, metrics)
        write_history(result.history, history)
    finish_run(work_dir)
    return metrics


def multiclass_class_weights(
    cfg: PipelineConfig, y_train: Any, n_classes: int
) -> list[float] | None:
    """With train.pos_weight = auto each class weighs the same in the loss in total; with a
    number (a binary setting) a multi-class model weighs every row alike."""
    from pipelines.multiclass import balanced_class_weights

    return balanced_class_weights(y_train, n_classes) if cfg.train.pos_weight == "auto" else None


def multiclass_validation(
    x_val: Any, y_val: Any, classes: list[str]
) -> Callable[[Any], dict[str, float]]:
    """train_and_publish's `validate` for a multi-class model: accuracy and macro-F1 on the
    val split's inputs `x_val`."""
    from pipelines.lightning_module import multiclass_probabilities
    from pipelines.multiclass import multiclass_metrics

    def validate(module: Any) -> dict[str, float]:
        scores = multiclass_metrics(y_val, multiclass_probabilities(module, x_val), classes)
        return {"accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]}

    return validate
