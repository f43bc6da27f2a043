"""Tabular classifiers: an MoE network whose feed-forward blocks are DeepSpeed's MoE layer, and
a dense baseline of the same shape.

DeepSpeed's gate turns the expert capacity into a Python int (`F.one_hot(num_classes=capacity)`),
so a traced graph freezes the capacity of the batch size it was traced with and fails at any
other batch size. `exportable()` swaps in the same top-k routing written with tensor ops only
(capacity from the token count at run time, first-come token dropping like DeepSpeed's cumsum
locations); export always verifies it against the DeepSpeed forward at several batch sizes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pipelines.schema.model import ModelConfig


def ensure_process_group() -> None:
    """DeepSpeed's MoE layer looks up expert-parallel groups in torch.distributed; a
    single-process run gets a gloo group of world size 1 with an in-memory store."""
    import torch.distributed as dist

    if dist.is_available() and not dist.is_initialized():
        dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)


def _expert(cfg: ModelConfig) -> nn.Module:
    return nn.Sequential(
        nn.Linear(cfg.hidden_dim, cfg.ffn_dim),
        nn.GELU(),
        nn.Dropout(cfg.dropout),
        nn.Linear(cfg.ffn_dim, cfg.hidden_dim),
    )


class DenseBlock(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(cfg.hidden_dim)
        self.ffn = _expert(cfg)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        return x + self.ffn(self.norm(x)), x.new_zeros(()), None


def _import_moe_layer() -> type[nn.Module]:
    import os

    if not torch.cuda.is_available():
        # name the accelerator instead of letting DeepSpeed probe for one and warn
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    from deepspeed.moe.layer import MoE

    return MoE


class MoEBlock(nn.Module):
    """Pre-norm residual block: x + MoE(LayerNorm(x))."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        MoE = _import_moe_layer()  # noqa: N806
        self.norm = nn.LayerNorm(cfg.hidden_dim)
        self.moe = MoE(
            hidden_size=cfg.hidden_dim,
            expert=_expert(cfg),
            num_experts=cfg.num_experts,
            k=cfg.top_k,
            capacity_factor=cfg.capacity_factor,
            eval_capacity_factor=cfg.eval_capacity_factor,
            min_capacity=cfg.min_capacity,
            noisy_gate_policy=cfg.noisy_gate_policy,
            drop_tokens=True,
            # random token selection would make inference depend on the RNG
            use_rts=False,
            top2_2nd_expert_sampling=cfg.second_expert_sampling,
        )
        self.second_expert_sampling = cfg.second_expert_sampling
        # DeepSpeed deep-copies one expert, so all start identical; give each its own init
        for expert in self.experts:
            for layer in expert.modules():
                if isinstance(layer, nn.Linear):
                    layer.reset_parameters()
        self.exportable = False

    @property
    def gate(self) -> nn.Module:
        return self.moe.deepspeed_moe.gate

    @property
    def experts(self) -> nn.ModuleList:
        return self.moe.deepspeed_moe.experts.deepspeed_experts

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        h = self.norm(x)
        if self.exportable:
            return x + self._routed_with_tensor_ops(h), x.new_zeros(()), None
        # created on first use, so a DDP/DeepSpeed launcher's process group comes first
        ensure_process_group()
        # Gumbel sampling of the 2nd expert is exploration for training; inference is
        # deterministic. Set per call: Lightning restores modes after validation by assigning
        # `.training`, not through train(), so an override of train() would be bypassed
        self.gate.top2_2nd_expert_sampling = self.second_expert_sampling and self.training
        out, aux_loss, expert_counts = self.moe(h)
        return x + out, aux_loss, expert_counts

    def _routed_with_tensor_ops(self, h: Tensor) -> Tensor:
        """DeepSpeed's top-2 inference routing (eval capacity factor, min capacity, dropping).
        Tokens are every position of every row, as DeepSpeed flattens them."""
        shape = h.shape
        h = h.reshape(-1, shape[-1])
        gate = self.gate
        logits = F.linear(h.float(), gate.wg.weight.float())
        gates = F.softmax(logits, dim=1)
        num_experts = gates.shape[1]
        tokens = torch.ones_like(gates[:, 0]).sum()  # a tensor, so the graph keeps it dynamic
        capacity = torch.clamp(
            torch.ceil(tokens / num_experts * gate.eval_capacity_factor * 2), min=gate.min_capacity
        )
        mask1 = F.one_hot(torch.argmax(gates, dim=1), num_experts).to(gates.dtype)
        second = logits.masked_fill(mask1.bool(), float("-inf"))
        mask2 = F.one_hot(torch.argmax(second, dim=1), num_experts).to(gates.dtype)
        # first come, first served within each expert's capacity, as DeepSpeed's cumsum locations
        locations1 = torch.cumsum(mask1, dim=0) - 1
        locations2 = torch.cumsum(mask2, dim=0) - 1 + mask1.sum(dim=0, keepdim=True)
        mask1 = mask1 * (locations1 < capacity).to(gates.dtype)
        mask2 = mask2 * (locations2 < capacity).to(gates.dtype)
        gate1 = (gates * mask1).sum(dim=1, keepdim=True)
        gate2 = (gates * mask2).sum(dim=1, keepdim=True)
        denom = torch.clamp(gate1 + gate2, min=torch.finfo(gates.dtype).eps)
        combine = gate1 / denom * mask1 + gate2 / denom * mask2
        expert_out = torch.stack([expert(h) for expert in self.experts], dim=1)
        return (combine.to(h.dtype).unsqueeze(-1) * expert_out).sum(dim=1).reshape(shape)


class TabularClassifier(nn.Module):
    """Standardise -> project -> residual (MoE or dense) blocks -> logit. The train split's
    feature means and stds live in buffers, so the exported graph takes raw features."""

    def __init__(
        self, n_features: int, cfg: ModelConfig, mean: list[float], std: list[float]
    ) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).clamp_min(1e-6))
        self.inp = nn.Sequential(
            nn.Linear(n_features, cfg.hidden_dim), nn.GELU(), nn.Dropout(cfg.dropout)
        )
        block = MoEBlock if cfg.is_moe else DenseBlock
        self.blocks = nn.ModuleList(block(cfg) for _ in range(cfg.num_blocks))
        self.head = nn.Sequential(nn.LayerNorm(cfg.hidden_dim), nn.Linear(cfg.hidden_dim, 1))

    def forward_with_aux(self, x: Tensor) -> tuple[Tensor, Tensor, list[Tensor]]:
        """Logits, summed load-balancing loss, tokens per expert for each MoE block."""
        h = self.inp(as_layer_input((x - self.mean) / self.std, self.inp[0]))
        aux_total = h.new_zeros(())
        counts: list[Tensor] = []
        for block in self.blocks:
            h, aux, expert_counts = block(h)
            aux_total = aux_total + aux
            if expert_counts is not None:
                counts.append(expert_counts)
        return as_float32(self.head(h).squeeze(-1)), aux_total, counts

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_aux(x)[0]


def feed_forward(cfg: ModelConfig) -> nn.Module:
    """The feed-forward block a config asks for: MoE, or its dense twin."""
    return MoEBlock(cfg) if cfg.is_moe else DenseBlock(cfg)


def pooled_classifier_parts(
    cfg: ModelConfig, num_classes: int
) -> tuple[nn.Dropout, nn.ModuleList, nn.Sequential]:
    """The dropout, the feed-forward (MoE) blocks and the class head that `classify_pooled`
    runs, built in this order (the seeded initialisation depends on it)."""
    blocks = nn.ModuleList(feed_forward(cfg) for _ in range(cfg.num_blocks))
    head = nn.Sequential(nn.LayerNorm(cfg.hidden_dim), nn.Linear(cfg.hidden_dim, num_classes))
    return nn.Dropout(cfg.dropout), blocks, head


def classify_pooled(
    pooled: Tensor, dropout: nn.Module, blocks: nn.ModuleList, head: nn.Module
) -> tuple[Tensor, Tensor, list[Tensor]]:
    """A backbone's pooled features (batch, hidden) as one token per example through the
    feed-forward `blocks` (the router picks experts per example) and the class `head`: class
    logits, the summed load-balancing loss, and the examples per expert of each MoE block.
    Shared by the image CNN and the time-series CNN."""
    h = dropout(pooled).unsqueeze(1)
    aux_total = h.new_zeros(())
    counts: list[Tensor] = []
    for block in blocks:
        h, aux, expert_counts = block(h)
        aux_total = aux_total + aux
        if expert_counts is not None:
            counts.append(expert_counts)
    return as_float32(head(h[:, 0])), aux_total, counts


def as_layer_input(z: Tensor, layer: nn.Module) -> Tensor:
    """`z` in the dtype of the layer it feeds. DeepSpeed's bf16/fp16 modes cast the whole
    module (buffers too) while Lightning hands the batch over in float32, so the first layer
    would see mixed dtypes. A Python branch, not a cast, when they agree: the exported ONNX
    graph stays free of no-op Casts."""
    dtype = next(layer.parameters()).dtype
    return z if z.dtype == dtype else z.to(dtype)


def as_float32(logits: Tensor) -> Tensor:
    """Logits for the loss and the metrics in float32 whatever the module's dtype."""
    return logits if logits.dtype == torch.float32 else logits.float()


class ProbabilityHead(nn.Module):
    """What is exported: raw features in, fraud probability out."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: Tensor) -> Tensor:
        return torch.sigmoid(self.model(features))


class SoftmaxHead(nn.Module):
    """What a multi-class model exports: its inputs in, class probabilities out."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: Tensor) -> Tensor:
        return torch.softmax(self.model(inputs), dim=-1)


@contextmanager
def exportable(model: nn.Module) -> Iterator[nn.Module]:
    """Route MoE blocks through the tensor-op path while tracing for export."""
    blocks = [m for m in model.modules() if isinstance(m, MoEBlock)]
    for block in blocks:
        block.exportable = True
    try:
        yield model
    finally:
        for block in blocks:
            block.exportable = False


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Total parameters, and those active for one row (top-k of the experts)."""
    total = sum(p.numel() for p in model.parameters())
    inactive = 0
    for block in (m for m in model.modules() if isinstance(m, MoEBlock)):
        per_expert = sum(p.numel() for p in block.experts[0].parameters())
        inactive += per_expert * (len(block.experts) - block.gate.k)
    return {"total": total, "active_per_row": total - inactive}
