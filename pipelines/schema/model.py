"""model: the architecture's keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipelines.models import families
from pipelines.schema.fields import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, bounded


@dataclass
class ModelConfig:
    """The keys of the model families (pipelines/models/families.py states which family is
    MoE, its dense twin, the modalities it reads) or of a user's own model class."""

    _target_: str = families.FAMILIES["moe_mlp"].target
    """The family's builder, as conf/model/<name>.yaml names it, or a torch.nn.Module class of your
    own (the contract: pipelines/models/build.py)"""
    name: str = "moe_mlp"
    """What metrics, run names and export versions show; for a class of your own, left at a family's
    name, its class name in snake case."""
    args: dict[str, Any] = field(default_factory=dict)
    """A class of your own only: its keyword arguments besides n_features."""
    hidden_dim: int = bounded(64, **AT_LEAST_ONE)
    """Width of the model's hidden representation (token width for the Transformers, last conv width
    for the CNNs)."""
    num_blocks: int = bounded(2, **AT_LEAST_ONE)
    """Residual blocks (MLP), encoder layers (Transformers) or MoE blocks (image head)."""
    ffn_dim: int = bounded(128, **AT_LEAST_ONE)
    """Width of each feed-forward block; in an MoE block, of each expert."""
    num_experts: int = bounded(4, **AT_LEAST_ONE)
    """Experts per MoE block (MoE models; at least 2)."""
    top_k: int = bounded(2, **AT_LEAST_ONE)
    """Experts each token is routed to; 2 (DeepSpeed's top-1 gate rules out batch-1 inference)."""
    capacity_factor: float = bounded(1.25, **POSITIVE)
    """Expert capacity in training, as a multiple of an even share of the tokens; tokens beyond it
    are dropped."""
    eval_capacity_factor: float = bounded(2.0, **POSITIVE)
    """The same at validation and inference."""
    min_capacity: int = bounded(4, **NON_NEGATIVE)
    """Smallest capacity of an expert, whatever the batch."""
    noisy_gate_policy: str | None = None
    """DeepSpeed's noisy gating in training; null: none."""
    second_expert_sampling: bool = True
    """Sample the second expert with Gumbel noise in training (DeepSpeed's top-2 gate)."""
    aux_loss_weight: float = bounded(0.01, **NON_NEGATIVE)
    """Weight of DeepSpeed's load-balancing loss added to the task loss."""
    dropout: float = bounded(0.1, ge=0.0, lt=1.0)
    """Dropout probability in the model's blocks."""
    seq_len: int = bounded(16, **AT_LEAST_ONE)
    """Sequence models only: how many of the customer's transactions (the current one last) one
    example holds, and the attention heads of the Transformer encoder."""
    num_heads: int = bounded(4, **AT_LEAST_ONE)
    """Attention heads (Transformers and the patch model)."""
    head_dim: int | None = bounded(None, **AT_LEAST_ONE)
    """The width of one attention head; None: hidden_dim / num_heads (the usual layout). Set when
    heads are pruned: the remaining heads keep their width."""

    @property
    def attention_head_dim(self) -> int:
        return self.head_dim if self.head_dim is not None else self.hidden_dim // self.num_heads

    def __post_init__(self) -> None:
        families.resolve(self)

    @property
    def is_moe(self) -> bool:
        return families.is_moe(self)

    @property
    def is_sequence(self) -> bool:
        return families.is_sequence(self)


CHOICES: dict[str, tuple[str, ...]] = {
    "model.noisy_gate_policy": ("RSample", "Jitter"),
}
