"""Text classifiers over token ids: a Transformer encoder whose feed-forward blocks are DeepSpeed
MoE layers (`model.name=moe_transformer`) or dense ones with the same active parameters
(`dense_transformer`), read out at the leading [CLS] token.

The text modality reuses the sequence models' config and blocks rather than declaring models
of its own: `model=moe_transformer` over a customer's transactions and over a ticket's tokens
is the same encoder (pipelines.models.sequence.AttentionBlock, pipelines.models.moe's
MoEBlock/DenseBlock) behind a different input layer, so the MoE settings, structured pruning of
widths and heads, QAT and the strategies apply unchanged. `model.seq_len` is the longest token
sequence (the tokenizer's max_length).

Every position is a token for the MoE router, padding included: DeepSpeed's layer takes no
mask. Padding tokens are embedded as zeros plus their position and never attended to, so they
do not change a text's score, but they do take expert capacity; batches are therefore cut to
their longest text before the forward (`trim_to_longest`), which also makes short tickets
cheap, and the ONNX graph has a dynamic sequence axis for the same reason.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from pipelines.models.moe import DenseBlock, MoEBlock, as_float32, exportable
from pipelines.models.sequence import AttentionBlock, run_encoder
from pipelines.schema.model import ModelConfig

INPUT_IDS, ATTENTION_MASK, PROBABILITIES = "input_ids", "attention_mask", "probabilities"


class TextClassifier(nn.Module):
    def __init__(self, vocab_size: int, num_classes: int, pad_id: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, cfg.hidden_dim, padding_idx=pad_id)
        self.position = nn.Parameter(torch.zeros(cfg.seq_len, cfg.hidden_dim))
        nn.init.normal_(self.position, std=0.02)
        self.dropout = nn.Dropout(cfg.dropout)
        ffn = MoEBlock if cfg.is_moe else DenseBlock
        self.attention = nn.ModuleList(AttentionBlock(cfg) for _ in range(cfg.num_blocks))
        self.ffn = nn.ModuleList(ffn(cfg) for _ in range(cfg.num_blocks))
        self.head = nn.Sequential(
            nn.LayerNorm(cfg.hidden_dim), nn.Linear(cfg.hidden_dim, num_classes)
        )

    def forward_with_aux(
        self, input_ids: Tensor, attention_mask: Tensor
    ) -> tuple[Tensor, Tensor, list[Tensor]]:
        """Class logits (batch, num_classes), the summed load-balancing loss, and the tokens
        per expert of each MoE block."""
        length = input_ids.shape[1]
        h = self.dropout(self.embed(input_ids) + self.position[:length])
        padding = attention_mask < 1
        h, aux_total, counts = run_encoder(self.attention, self.ffn, h, padding)
        # position 0 is [CLS], the one token every text has
        return as_float32(self.head(h[:, 0])), aux_total, counts

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return self.forward_with_aux(input_ids, attention_mask)[0]


def trim_to_longest(input_ids: Tensor, attention_mask: Tensor) -> tuple[Tensor, Tensor]:
    """The batch cut to its longest text: trailing positions that are padding in every row
    change no score (they are never attended to) but cost attention and expert capacity."""
    longest = int(attention_mask.sum(dim=1).max().clamp_min(1))
    return input_ids[:, :longest], attention_mask[:, :longest]


class _Probabilities(nn.Module):
    """What is exported: token ids and mask in, class probabilities out."""

    def __init__(self, model: TextClassifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return torch.softmax(self.model(input_ids, attention_mask), dim=-1)


def export_text_onnx(model: TextClassifier, path: Path, opset: int, trace_length: int = 12) -> None:
    """TorchScript exporter (dynamo=False, as for the other models) with dynamic batch and
    sequence axes; traced at batch 3 and `trace_length` tokens, so neither size is baked in
    (a size of 1 would be specialised as a constant)."""
    import warnings

    head = _Probabilities(model).eval()
    ids = torch.full((3, trace_length), 5, dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, trace_length // 2 :] = 0  # one padded row, so masking is traced as data-dependent
    axes = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings(), exportable(model), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            head,
            (ids, mask),
            str(path),
            dynamo=False,
            input_names=[INPUT_IDS, ATTENTION_MASK],
            output_names=[PROBABILITIES],
            dynamic_axes={INPUT_IDS: axes, ATTENTION_MASK: axes, PROBABILITIES: {0: "batch"}},
            opset_version=opset,
        )
