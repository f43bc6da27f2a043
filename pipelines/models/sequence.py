"""Sequence models over a customer's recent transactions.

Input: (batch, seq_len, n_features + 1): each row holds the customer's last `seq_len`
transactions up to and including the one scored (last position), left-padded with zeros;
the extra last channel is 1 for a real transaction and 0 for padding.

- moe_transformer: Transformer encoder whose feed-forward blocks are DeepSpeed MoE layers
  (pipelines.models.moe.MoEBlock), read out at the scored transaction.
- dense_transformer: the same encoder with dense feed-forward blocks (the matched baseline).
- bilstm_attention: a bidirectional LSTM with masked additive attention pooling.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pipelines.models.moe import DenseBlock, MoEBlock, as_float32, as_layer_input
from pipelines.schema.model import ModelConfig


class _Standardise(nn.Module):
    """Train-split statistics in buffers, so the exported graph takes raw features."""

    def __init__(self, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).clamp_min(1e-6))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Standardised features (zero at padding) and the real-transaction mask."""
        present = x[..., -1:]
        features = (x[..., :-1] - self.mean) / self.std * present
        return features, present.squeeze(-1)


class SelfAttention(nn.Module):
    """Multi-head self-attention with `num_heads` heads of `head_dim` each, padding keys
    masked out.

    Written out rather than nn.MultiheadAttention, which ties the head width to
    embed_dim / num_heads and packs query, key and value into one in_proj matrix: structured
    pruning (pipelines/compression/pruning.py) removes whole heads, which needs fewer heads
    of the SAME width and a head's rows findable in each projection. nn.MultiheadAttention
    also reads out_proj's weight directly instead of calling the layer, so quantization-aware
    training could not fake-quantize it. Here every projection is a plain Linear called as a
    module. The arithmetic is the one of "Attention Is All You Need" (scaled dot product,
    softmax over keys), and the ONNX export is plain MatMul/Softmax, as before.
    """

    def __init__(self, hidden_dim: int, num_heads: int, head_dim: int, dropout: float) -> None:
        super().__init__()
        self.num_heads, self.head_dim = num_heads, head_dim
        inner = num_heads * head_dim
        self.query = nn.Linear(hidden_dim, inner)
        self.key = nn.Linear(hidden_dim, inner)
        self.value = nn.Linear(hidden_dim, inner)
        self.out = nn.Linear(inner, hidden_dim)
        self.dropout = nn.Dropout(dropout)

    def _split_heads(self, projected: Tensor) -> Tensor:
        """(batch, positions, heads * head_dim) -> (batch, heads, positions, head_dim)."""
        return projected.unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)

    def forward(self, h: Tensor, padding: Tensor) -> Tensor:
        q = self._split_heads(self.query(h))
        k = self._split_heads(self.key(h))
        v = self._split_heads(self.value(h))
        scores = torch.matmul(q, k.transpose(-2, -1)) * self.head_dim**-0.5
        # the dtype's own minimum, not -inf or -1e9: a row of -inf would give NaN, and -1e9
        # overflows float16 under mixed precision. The last position is never padding, so
        # every row keeps at least one key
        scores = scores.masked_fill(padding[:, None, None, :], torch.finfo(scores.dtype).min)
        weights = self.dropout(torch.softmax(scores, dim=-1))
        context = torch.matmul(weights, v).transpose(1, 2).flatten(2)
        return self.out(context)


class AttentionBlock(nn.Module):
    """Pre-norm self-attention over the customer's transactions, padding masked out."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(cfg.hidden_dim)
        self.attention = SelfAttention(
            cfg.hidden_dim, cfg.num_heads, cfg.attention_head_dim, cfg.dropout
        )

    def forward(self, h: Tensor, padding: Tensor) -> Tensor:
        return h + self.attention(self.norm(h), padding)


def patch_encoder_parts(
    cfg: ModelConfig, tokens: int
) -> tuple[nn.Parameter, nn.Dropout, nn.ModuleList, nn.ModuleList]:
    """The patch models' encoder (image and series): learned positions for `tokens` tokens,
    dropout, and num_blocks of self-attention with their feed-forwards (MoE or dense), built
    in this order (the seeded initialisation depends on it). Run them with run_encoder."""
    if cfg.head_dim is None and cfg.hidden_dim % cfg.num_heads:
        raise ValueError(
            f"model.hidden_dim = {cfg.hidden_dim}, model.num_heads = {cfg.num_heads}: "
            f"{cfg.name} expects hidden_dim divisible by num_heads (or model.head_dim set)"
        )
    position = nn.Parameter(torch.zeros(tokens, cfg.hidden_dim))
    nn.init.normal_(position, std=0.02)
    attention = nn.ModuleList(AttentionBlock(cfg) for _ in range(cfg.num_blocks))
    block = MoEBlock if cfg.is_moe else DenseBlock
    ffn = nn.ModuleList(block(cfg) for _ in range(cfg.num_blocks))
    return position, nn.Dropout(cfg.dropout), attention, ffn


def run_encoder(
    attention: nn.ModuleList, ffn: nn.ModuleList, h: Tensor, padding: Tensor
) -> tuple[Tensor, Tensor, list[Tensor]]:
    """The encoder layers, each self-attention then its feed-forward (MoE or dense): the
    hidden states, the summed load-balancing loss, and the tokens per expert of each MoE
    block. Shared by the transaction-history and the text Transformers."""
    aux_total = h.new_zeros(())
    counts: list[Tensor] = []
    for attend, feed_forward in zip(attention, ffn, strict=True):
        h, aux, expert_counts = feed_forward(attend(h, padding))
        aux_total = aux_total + aux
        if expert_counts is not None:
            counts.append(expert_counts)
    return h, aux_total, counts


class TransformerClassifier(nn.Module):
    def __init__(
        self, n_features: int, cfg: ModelConfig, mean: list[float], std: list[float]
    ) -> None:
        super().__init__()
        self.standardise = _Standardise(mean, std)
        self.inp = nn.Sequential(nn.Linear(n_features + 1, cfg.hidden_dim), nn.GELU())
        self.position = nn.Parameter(torch.zeros(cfg.seq_len, cfg.hidden_dim))
        nn.init.normal_(self.position, std=0.02)
        ffn = MoEBlock if cfg.is_moe else DenseBlock
        self.attention = nn.ModuleList(AttentionBlock(cfg) for _ in range(cfg.num_blocks))
        self.ffn = nn.ModuleList(ffn(cfg) for _ in range(cfg.num_blocks))
        self.head = nn.Sequential(nn.LayerNorm(cfg.hidden_dim), nn.Linear(cfg.hidden_dim, 1))

    def forward_with_aux(self, x: Tensor) -> tuple[Tensor, Tensor, list[Tensor]]:
        features, present = self.standardise(x)
        inputs = torch.cat([features, present.unsqueeze(-1)], dim=-1)
        h = self.inp(as_layer_input(inputs, self.inp[0])) + self.position
        padding = present < 0.5
        h, aux_total, counts = run_encoder(self.attention, self.ffn, h, padding)
        # the scored transaction is the last position, never padding
        return as_float32(self.head(h[:, -1]).squeeze(-1)), aux_total, counts

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_aux(x)[0]


class BiLSTMAttentionClassifier(nn.Module):
    def __init__(
        self, n_features: int, cfg: ModelConfig, mean: list[float], std: list[float]
    ) -> None:
        super().__init__()
        self.standardise = _Standardise(mean, std)
        half = cfg.hidden_dim // 2
        self.lstm = nn.LSTM(n_features + 1, half, batch_first=True, bidirectional=True)
        self.score = nn.Sequential(nn.Linear(2 * half, half), nn.Tanh(), nn.Linear(half, 1))
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Sequential(nn.LayerNorm(4 * half), nn.Linear(4 * half, 1))

    def forward_with_aux(self, x: Tensor) -> tuple[Tensor, Tensor, list[Tensor]]:
        features, present = self.standardise(x)
        inputs = torch.cat([features, present.unsqueeze(-1)], dim=-1)
        h, _ = self.lstm(as_layer_input(inputs, self.lstm))
        scores = self.score(h).squeeze(-1).masked_fill(present < 0.5, -1e9)
        pooled = (torch.softmax(scores, dim=1).unsqueeze(-1) * h).sum(dim=1)
        summary = self.dropout(torch.cat([pooled, h[:, -1]], dim=-1))
        return as_float32(self.head(summary).squeeze(-1)), h.new_zeros(()), []

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_aux(x)[0]
