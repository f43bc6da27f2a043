"""The tabular train stage: Lightning fit of the configured model; a weights-only checkpoint,
metrics, curves."""

from __future__ import annotations

from typing import Any

from pipelines.config import PipelineConfig
from pipelines.core.train_stage import train_and_publish
from pipelines.datamodule import TabularDataModule, model_inputs
from pipelines.evaluation import ranking_metrics
from pipelines.io import read_json
from pipelines.layout import Layout
from pipelines.onnx_export import torch_probabilities
from pipelines.strategy import check_hardware


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    check_hardware(cfg)
    features = read_json(layout.features_file)["features"]
    data = model_inputs(cfg, layout, features, ("train", "val"))
    dm = TabularDataModule.from_config(cfg, data["train"], data["val"], features)
    x_val, y_val = dm.val_xy
    return train_and_publish(
        cfg,
        layout,
        dm,
        validate=lambda module: ranking_metrics(y_val, torch_probabilities(module.model, x_val)),
    )
