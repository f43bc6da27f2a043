"""model: the architecture's keys."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.schema.fields import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, bounded

# the image models (pipelines/models/image.py) share ModelConfig; their dense twins are
# image_cnn_dense and image_patch_dense
MOE_MODELS = ("moe_mlp", "moe_transformer", "image_cnn_moe", "image_patch_moe")
SEQUENCE_MODELS = ("moe_transformer", "dense_transformer", "bilstm_attention")


@dataclass
class ModelConfig:
    name: str = "moe_mlp"
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

    @property
    def is_moe(self) -> bool:
        return self.name in MOE_MODELS

    @property
    def is_sequence(self) -> bool:
        return self.name in SEQUENCE_MODELS


CHOICES: dict[str, tuple[str, ...]] = {
    "model.name": (
        "moe_mlp",
        "dense_mlp",
        "moe_transformer",
        "dense_transformer",
        "bilstm_attention",
        "image_cnn_moe",
        "image_cnn_dense",
        "image_patch_moe",
        "image_patch_dense",
    ),
    "model.noisy_gate_policy": ("RSample", "Jitter"),
}
