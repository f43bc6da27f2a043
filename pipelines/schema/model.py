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

    # the family's builder, as conf/model/<name>.yaml names it, or a torch.nn.Module class of
    # your own (the contract: pipelines/models/build.py)
    _target_: str = families.FAMILIES["moe_mlp"].target
    # what metrics, run names and export versions show; for a class of your own, left at a
    # family's name, its class name in snake case
    name: str = "moe_mlp"
    # a class of your own only: its keyword arguments besides n_features
    args: dict[str, Any] = field(default_factory=dict)
    hidden_dim: int = bounded(64, **AT_LEAST_ONE)
    num_blocks: int = bounded(2, **AT_LEAST_ONE)
    ffn_dim: int = bounded(128, **AT_LEAST_ONE)
    num_experts: int = bounded(4, **AT_LEAST_ONE)
    top_k: int = bounded(2, **AT_LEAST_ONE)
    capacity_factor: float = bounded(1.25, **POSITIVE)
    eval_capacity_factor: float = bounded(2.0, **POSITIVE)
    min_capacity: int = bounded(4, **NON_NEGATIVE)
    noisy_gate_policy: str | None = None
    second_expert_sampling: bool = True
    aux_loss_weight: float = bounded(0.01, **NON_NEGATIVE)
    dropout: float = bounded(0.1, ge=0.0, lt=1.0)
    # sequence models only: how many of the customer's transactions (the current one last)
    # one example holds, and the attention heads of the Transformer encoder
    seq_len: int = bounded(16, **AT_LEAST_ONE)
    num_heads: int = bounded(4, **AT_LEAST_ONE)
    # the width of one attention head; None: hidden_dim / num_heads (the usual layout). Set
    # when heads are pruned: the remaining heads keep their width
    head_dim: int | None = bounded(None, **AT_LEAST_ONE)

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
