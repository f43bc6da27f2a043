"""Small models the unit tests build, so each test states only what it varies: a ModelConfig
with one block and two heads, and a tabular RiskClassifier around a model config with
identity feature scaling."""

from __future__ import annotations

from typing import Any

import torch

from pipelines.config import to_container
from pipelines.lightning_module import RiskClassifier
from pipelines.schema.model import ModelConfig
from pipelines.schema.training import TrainConfig


def small_model_config(name: str, **keys: Any) -> ModelConfig:
    """`name` with one block and two attention heads unless `keys` say otherwise."""
    return ModelConfig(name=name, **{"num_blocks": 1, "num_heads": 2, **keys})


def identity_scaled_classifier(
    model: ModelConfig, features: list[str], train: TrainConfig, pos_weight: float | None = None
) -> RiskClassifier:
    """A RiskClassifier over `features` scaled by mean 0 and std 1 (the rows are standard
    already), its weights drawn from seed 0, in train mode."""
    torch.manual_seed(0)
    n = len(features)
    return RiskClassifier(
        n_features=n,
        feature_names=features,
        feature_mean=[0.0] * n,
        feature_std=[1.0] * n,
        model=to_container(model),
        train=to_container(train),
        pos_weight=pos_weight,
    )
