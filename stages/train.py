"""train: Lightning fit of the configured model; a weights-only checkpoint, metrics, curves."""

from __future__ import annotations

import csv
import shutil
from typing import Any

from pipelines.config import PipelineConfig
from pipelines.datamodule import TabularDataModule
from pipelines.evaluation import ranking_metrics
from pipelines.io import read_json, staged_outputs, write_json
from pipelines.layout import Layout
from pipelines.models.moe import count_parameters
from pipelines.onnx_export import torch_probabilities
from pipelines.training import fit_classifier, save_checkpoint
from stages._cli import main


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    features = read_json(layout.features_file)["features"]
    dm = TabularDataModule(
        layout.augmented_train,
        layout.split(layout.cleaned, "val"),
        features,
        cfg.train.batch_size,
        cfg.train.eval_batch_size,
        cfg.train.num_workers,
    )
    shutil.rmtree(layout.train_work, ignore_errors=True)
    result = fit_classifier(
        cfg, dm, layout.train_work, run_name=f"{cfg.data.name}-{cfg.model.name}"
    )
    x_val, y_val = dm.val_xy
    val = ranking_metrics(y_val, torch_probabilities(result.module.model, x_val))
    metrics = {
        "val": val,
        "epochs_run": result.epochs_run,
        "parameters": count_parameters(result.module.model),
    }
    outputs = (layout.checkpoint, layout.train_metrics, layout.train_history)
    with staged_outputs(layout.staging, *outputs) as (ckpt, metrics_file, history):
        save_checkpoint(result.module, ckpt, {"val_metrics": val})
        write_json(metrics_file, metrics)
        _write_history(result.history, history)
    return metrics


def _write_history(rows: list[dict[str, float]], path) -> None:
    columns = sorted({key for row in rows for key in row}, key=lambda k: (k != "epoch", k))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns or ["epoch"])
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main("train", run)
