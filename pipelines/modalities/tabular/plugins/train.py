"""The tabular train stage: Lightning fit of the configured model; a weights-only checkpoint,
metrics, curves."""

from __future__ import annotations

from typing import Any

from pipelines.config import PipelineConfig
from pipelines.datamodule import TabularDataModule, model_inputs
from pipelines.evaluation import ranking_metrics
from pipelines.io import read_json, staged_outputs, write_json
from pipelines.layout import Layout
from pipelines.models.moe import count_parameters
from pipelines.onnx_export import torch_probabilities
from pipelines.strategy import check_hardware
from pipelines.training import (
    drop_other_runs,
    finish_run,
    fit_classifier,
    run_fingerprint,
    save_checkpoint,
    write_history,
)


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    check_hardware(cfg)
    features = read_json(layout.features_file)["features"]
    data = model_inputs(cfg, layout, features, ("train", "val"))
    dm = TabularDataModule.from_config(cfg, data["train"], data["val"], features)
    # one work dir per (config, inputs): rerunning the same thing after a kill resumes it
    inputs = [layout.augmented_train, layout.cleaned]
    work_dir = layout.train_work / run_fingerprint(cfg, inputs)
    drop_other_runs(layout.train_work, keep=work_dir.name)
    result = fit_classifier(cfg, dm, work_dir, run_name=f"{cfg.data.name}-{cfg.model.name}")
    x_val, y_val = dm.val_xy
    val = ranking_metrics(y_val, torch_probabilities(result.module.model, x_val))
    # each rank's view of the validation metric, for checking that DDP ranks agree
    write_json(work_dir / "ranks" / f"rank{result.global_rank}.json", val)
    if result.global_rank != 0:
        return {"val": val}
    metrics = {
        "val": val,
        "epochs_run": result.epochs_run,
        "parameters": count_parameters(result.module.model),
    }
    outputs = (layout.checkpoint, layout.train_metrics, layout.train_history)
    with staged_outputs(layout.staging, *outputs) as (ckpt, metrics_file, history):
        save_checkpoint(result.module, ckpt, {"val_metrics": val})
        write_json(metrics_file, metrics)
        write_history(result.history, history)
    finish_run(work_dir)
    return metrics

