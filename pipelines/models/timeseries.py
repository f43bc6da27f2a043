"""Series classifiers over normalised float32 windows (batch, channels, length), sharing
ModelConfig and the MoE blocks of the other modalities:

- ts_inception_moe: an InceptionTime-like 1-D CNN (Ismail Fawaz et al., "InceptionTime:
  Finding AlexNet for time series classification", DMKD 2020): three Inception modules (a 1x1
  bottleneck, then convolutions of kernel 9, 19 and 39 side by side with a max-pool + 1x1
  branch, BatchNorm, ReLU) with a residual shortcut around them, global average pooling over
  time, then `num_blocks` MoE feed-forward blocks over the pooled vector as one token (the
  router picks experts per window), then the class head.
- ts_inception_dense: the same with dense feed-forwards of top_k x the expert width
  (pipelines.models.families.matched_dense), the same parameters active per window.
- ts_patch_moe: a PatchTST-like patch Transformer (Nie et al., "A Time Series is Worth 64
  Words", ICLR 2023): channel-independent, each channel's window cut into `model.seq_len`
  non-overlapping patches, embedded by one shared linear map (a strided 1-D conv), learned
  positions, then per block self-attention and an MoE feed-forward (the image patch model's
  pipelines.models.sequence.AttentionBlock, run_encoder and feed_forward); the patches of a
  channel are averaged, the channels' vectors joined and read by the class head. The router
  picks experts per patch of each channel. ts_patch_dense is its dense twin.

`model.hidden_dim` is the width of each Inception module's output (four branches of
hidden_dim / 4 filters), or the patch model's token width. The window length is fixed by
data.timeseries.window (the patch model's patch length is window / seq_len, checked when the
config loads); the ONNX graph has a dynamic batch axis (the convolutions and the average pool
would take any length, but the export pins the trained one, as the card states).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from pipelines.models.families import build_for
from pipelines.models.moe import (
    SoftmaxHead,
    as_float32,
    as_layer_input,
    classify_pooled,
    pooled_classifier_parts,
)
from pipelines.models.sequence import patch_encoder_parts, run_encoder
from pipelines.schema.model import ModelConfig

WINDOWS, PROBABILITIES = "windows", "probabilities"
KERNELS = (9, 19, 39)  # InceptionTime's 10/20/40, odd so "same" padding is symmetric
DEPTH = 3  # Inception modules inside the one residual block


class InceptionModule(nn.Module):
    def __init__(self, inputs: int, filters: int) -> None:
        super().__init__()
        self.bottleneck = nn.Conv1d(inputs, filters, 1, bias=False)
        self.convs = nn.ModuleList(
            nn.Conv1d(filters, filters, k, padding=k // 2, bias=False) for k in KERNELS
        )
        self.pool = nn.Sequential(
            nn.MaxPool1d(3, stride=1, padding=1), nn.Conv1d(inputs, filters, 1, bias=False)
        )
        self.out = nn.Sequential(nn.BatchNorm1d(filters * (len(KERNELS) + 1)), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        z = self.bottleneck(x)
        return self.out(torch.cat([*(conv(z) for conv in self.convs), self.pool(x)], dim=1))


class InceptionClassifier(nn.Module):
    def __init__(self, num_classes: int, channels: int, length: int, cfg: ModelConfig) -> None:
        """`length` (the window) is not needed: the convolutions take any."""
        super().__init__()
        if cfg.hidden_dim % (len(KERNELS) + 1):
            raise ValueError(
                f"model.hidden_dim = {cfg.hidden_dim}: {cfg.name} expects a multiple of "
                f"{len(KERNELS) + 1} (one share per Inception branch)"
            )
        filters = cfg.hidden_dim // (len(KERNELS) + 1)
        widths = [channels, *[cfg.hidden_dim] * DEPTH]
        self.inception = nn.Sequential(*(InceptionModule(widths[i], filters) for i in range(DEPTH)))
        self.shortcut = nn.Sequential(
            nn.Conv1d(channels, cfg.hidden_dim, 1, bias=False), nn.BatchNorm1d(cfg.hidden_dim)
        )
        self.dropout, self.ffn, self.head = pooled_classifier_parts(cfg, num_classes)

    def forward_with_aux(self, windows: Tensor) -> tuple[Tensor, Tensor, list[Tensor]]:
        """Class logits (batch, num_classes), the summed load-balancing loss, and the windows
        per expert of each MoE block."""
        x = as_layer_input(windows, self.shortcut[0])
        features = torch.relu(self.inception(x) + self.shortcut(x))
        return classify_pooled(features.mean(dim=2), self.dropout, self.ffn, self.head)

    def forward(self, windows: Tensor) -> Tensor:
        return self.forward_with_aux(windows)[0]


def patch_length(length: int, cfg: ModelConfig) -> int:
    """The patch length that cuts a window of `length` samples into cfg.seq_len patches."""
    if length % cfg.seq_len:
        raise ValueError(
            f"model.seq_len = {cfg.seq_len} with data.timeseries.window.length = {length}: "
            f"{cfg.name} expects a number of patches that divides the window length"
        )
    return length // cfg.seq_len


class PatchClassifier(nn.Module):
    def __init__(self, num_classes: int, channels: int, length: int, cfg: ModelConfig) -> None:
        super().__init__()
        side = patch_length(length, cfg)
        # one linear map per patch, shared by every channel (PatchTST's channel independence)
        self.patchify = nn.Conv1d(1, cfg.hidden_dim, kernel_size=side, stride=side)
        parts = patch_encoder_parts(cfg, cfg.seq_len)
        self.position, self.dropout, self.attention, self.ffn = parts
        self.norm = nn.LayerNorm(cfg.hidden_dim)
        self.head = nn.Linear(channels * cfg.hidden_dim, num_classes)

    def forward_with_aux(self, windows: Tensor) -> tuple[Tensor, Tensor, list[Tensor]]:
        """Class logits, the summed load-balancing loss, and the patch tokens per expert of
        each MoE block."""
        x = as_layer_input(windows, self.patchify)
        batch, channels, length = x.shape
        # (batch * channels, 1, length) -> (batch * channels, patches, hidden)
        tokens = self.patchify(x.reshape(batch * channels, 1, length)).transpose(1, 2)
        h = self.dropout(tokens + self.position)
        # every patch is real: nothing is masked
        padding = h.new_zeros(h.shape[:2], dtype=torch.bool)
        h, aux_total, counts = run_encoder(self.attention, self.ffn, h, padding)
        per_channel = self.norm(h).mean(dim=1).reshape(batch, -1)
        return as_float32(self.head(per_channel)), aux_total, counts

    def forward(self, windows: Tensor) -> Tensor:
        return self.forward_with_aux(windows)[0]


def build_series_model(num_classes: int, channels: int, length: int, cfg: ModelConfig) -> nn.Module:
    """The series family of `cfg` for windows of `channels` x `length` samples."""
    return build_for("timeseries", cfg, num_classes, channels, length)


def export_series_onnx(
    model: nn.Module, path: Path, opset: int, channels: int, length: int
) -> None:
    """Normalised windows (batch, channels, length) -> probabilities, with a dynamic batch
    axis; traced at batch 3 so the size is not baked in. Faithfulness to PyTorch is checked
    by the quantize stage's parity at several batch sizes."""
    from pipelines.onnx_export import export_graph

    model = model.eval()
    example = torch.randn(3, channels, length, generator=torch.Generator().manual_seed(0))
    export_graph(SoftmaxHead(model).eval(), model, example, path, opset, WINDOWS, PROBABILITIES)
