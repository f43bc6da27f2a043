"""Builds the network of a tabular run (a row's features, or an entity's history of rows, in;
one logit out) from its ModelConfig: a family's builder, or a user's own model class.

A user's own model (`model._target_=my_models.TinyNet`, with `model.args.<key>=...`):

- a torch.nn.Module class, importable from PYTHONPATH, built as
  `TinyNet(n_features=<number of features>, **model.args)`;
- its forward takes the features of a batch of rows, float32 `[batch, n_features]`,
  standardised with the train split's means and stds (the wrapper below does that, and the
  exported ONNX graph includes it, so the graph takes raw features), and returns logits
  `[batch]` (the positive class's; the sigmoid is applied outside), or a tuple
  `(logits, aux_loss)` whose scalar aux_loss is added to the task loss with
  `model.aux_loss_weight`;
- it must trace with torch.onnx.export for the quantize stage's ONNX variants.

`model.name` is what metrics, run names and export versions show (the class name in snake
case unless set). Checkpoints record `_target_` and `args`, so quantize, evaluate and export
rebuild the same class. Compression that needs a known family skips a user's model with a
reason (pruning: no feed-forward blocks to prune) or uses what every model has (distillation
trains a dense_mlp student on its soft targets; QAT fake-quantizes its Linear layers).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from pipelines.models.families import family_of, import_target
from pipelines.models.moe import as_float32
from pipelines.schema.model import ModelConfig


class UserModel(nn.Module):
    """A user's network behind the train split's standardisation, with the
    `forward_with_aux` the lightning module and compression call on every network."""

    def __init__(self, network: nn.Module, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).clamp_min(1e-6))
        self.network = network

    def forward_with_aux(self, x: Tensor) -> tuple[Tensor, Tensor, list[Tensor]]:
        """Logits, the network's auxiliary loss (zero when it has none), no expert counts."""
        out = self.network((x - self.mean) / self.std)
        logits, aux = out if isinstance(out, tuple) else (out, None)
        if logits.shape != x.shape[:1]:
            raise ValueError(
                f"{type(self.network).__name__} returned logits of shape {tuple(logits.shape)}"
                f"; expected [batch] = {tuple(x.shape[:1])}"
            )
        return as_float32(logits), aux if aux is not None else logits.new_zeros(()), []

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_aux(x)[0]


def build_model(
    n_features: int, cfg: ModelConfig, mean: list[float], std: list[float]
) -> nn.Module:
    if not math.isfinite(sum(mean)) or not math.isfinite(sum(std)):
        raise ValueError("feature statistics must be finite")
    family = family_of(cfg)
    if family is None:
        network = import_target(cfg._target_)(n_features=n_features, **cfg.args)
        return UserModel(network, mean, std)
    return import_target(family.target)(n_features, cfg, mean, std)
