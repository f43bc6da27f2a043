"""Image classifiers over normalised float32 images (batch, 3, H, W), sharing ModelConfig and
the MoE blocks of the other modalities:

- image_cnn_moe: a small conv backbone (three stages of two 3x3 conv + BatchNorm + ReLU and a
  2x2 max-pool; widths hidden/4, hidden/2, hidden) averaged to one feature vector, then
  `num_blocks` MoE feed-forward blocks over that vector as a single token, then the class
  head. The router picks experts per image.
- image_patch_moe: a patch Transformer (ViT-style): a patchify conv, a [CLS] token and
  learned positions, then per block self-attention and an MoE feed-forward
  (pipelines.models.sequence.AttentionBlock, run_encoder), read out at [CLS]. The router
  picks experts per patch.
- image_cnn_dense / image_patch_dense: the same with dense feed-forwards of top_k x the
  expert width (pipelines.models.families.matched_dense), the same parameters active per token.

`model.hidden_dim` is the feature width of both; for the patch model `model.seq_len` is the
number of patches (a square: 16 is a 4 x 4 grid), so the patch side is image side /
sqrt(seq_len), as the text model's seq_len is its token count. The image size is fixed by
the preprocessing (data side), so only the batch axis of the ONNX graph is dynamic.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
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

IMAGES, PROBABILITIES = "images", "probabilities"


def _conv_stage(inputs: int, outputs: int) -> nn.Sequential:
    """Two 3x3 convs (BatchNorm, ReLU) and a 2x2 max-pool: the VGG unit, which halves the
    side and exports to plain Conv/Relu/MaxPool (BatchNorm folds into the conv)."""
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, padding=1, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
        nn.Conv2d(outputs, outputs, 3, padding=1, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class ImageCNNClassifier(nn.Module):
    def __init__(self, num_classes: int, image_size: int, cfg: ModelConfig) -> None:
        super().__init__()
        if image_size < 8:
            raise ValueError(f"image size {image_size}: the three 2x2 pools need at least 8 px")
        widths = [max(cfg.hidden_dim // 4, 8), max(cfg.hidden_dim // 2, 8), cfg.hidden_dim]
        self.backbone = nn.Sequential(
            _conv_stage(3, widths[0]), _conv_stage(widths[0], widths[1]), _conv_stage(*widths[1:])
        )
        self.dropout, self.ffn, self.head = pooled_classifier_parts(cfg, num_classes)

    def forward_with_aux(self, images: Tensor) -> tuple[Tensor, Tensor, list[Tensor]]:
        """Class logits (batch, num_classes), the summed load-balancing loss, and the images
        per expert of each MoE block."""
        features = self.backbone(as_layer_input(images, self.backbone[0][0]))
        # global average pool; one token per image for the router
        return classify_pooled(features.mean(dim=(2, 3)), self.dropout, self.ffn, self.head)

    def forward(self, images: Tensor) -> Tensor:
        return self.forward_with_aux(images)[0]


def patch_side(image_size: int, cfg: ModelConfig) -> int:
    """The patch side that cuts an image into cfg.seq_len patches (a square grid)."""
    grid = math.isqrt(cfg.seq_len)
    if grid * grid != cfg.seq_len or image_size % grid:
        raise ValueError(
            f"model.seq_len = {cfg.seq_len} with image size {image_size}: {cfg.name} expects a "
            f"square number of patches whose grid side divides the image side (e.g. 16 for "
            f"a 4 x 4 grid of {image_size // 4} px patches)"
        )
    return image_size // grid


class ImagePatchClassifier(nn.Module):
    def __init__(self, num_classes: int, image_size: int, cfg: ModelConfig) -> None:
        super().__init__()
        side = patch_side(image_size, cfg)
        self.patchify = nn.Conv2d(3, cfg.hidden_dim, kernel_size=side, stride=side)
        self.cls = nn.Parameter(torch.zeros(1, 1, cfg.hidden_dim))
        nn.init.normal_(self.cls, std=0.02)
        # positions for [CLS] and every patch
        parts = patch_encoder_parts(cfg, cfg.seq_len + 1)
        self.position, self.dropout, self.attention, self.ffn = parts
        self.head = nn.Sequential(
            nn.LayerNorm(cfg.hidden_dim), nn.Linear(cfg.hidden_dim, num_classes)
        )

    def forward_with_aux(self, images: Tensor) -> tuple[Tensor, Tensor, list[Tensor]]:
        """Class logits, the summed load-balancing loss, and the tokens ([CLS] and every
        patch) per expert of each MoE block."""
        patches = self.patchify(as_layer_input(images, self.patchify)).flatten(2).transpose(1, 2)
        cls = self.cls.expand(patches.shape[0], -1, -1)
        h = self.dropout(torch.cat([cls, patches], dim=1) + self.position)
        # every patch is real: nothing is masked
        padding = h.new_zeros(h.shape[:2], dtype=torch.bool)
        h, aux_total, counts = run_encoder(self.attention, self.ffn, h, padding)
        return as_float32(self.head(h[:, 0])), aux_total, counts

    def forward(self, images: Tensor) -> Tensor:
        return self.forward_with_aux(images)[0]


def build_image_model(num_classes: int, image_size: int, cfg: ModelConfig) -> nn.Module:
    return build_for("image", cfg, num_classes, image_size)


def export_image_onnx(
    model: nn.Module,
    path: Path,
    opset: int,
    size: int,
    check_batches: tuple[int, ...] = (1, 3, 7),
    atol: float = 1e-4,
) -> dict[int, float]:
    """Export with a dynamic batch axis and verify the graph: ONNX Runtime's probabilities
    against the PyTorch model's (DeepSpeed's routing, not the export path's) at each of
    `check_batches`; raises if any differs by more than `atol`. Returns the largest
    difference per batch size.

    TorchScript exporter (dynamo=False, as the other models); traced at batch 3 so the size
    is not baked in (a batch of 1 would be specialised as a constant)."""
    from pipelines.onnx_export import export_graph
    from pipelines.runtime import session

    model = model.eval()
    head = SoftmaxHead(model).eval()
    example = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(0))
    export_graph(head, model, example, path, opset, IMAGES, PROBABILITIES)
    ort = session(path, cpu_only=True)
    generator = torch.Generator().manual_seed(1)
    differences: dict[int, float] = {}
    for rows in check_batches:
        images = torch.randn(rows, 3, size, size, generator=generator)
        with torch.no_grad():
            expected = head(images).numpy()
        (got,) = ort.run(None, {IMAGES: images.numpy()})
        differences[rows] = float(np.abs(got - expected).max())
    worst = max(differences.values(), default=0.0)
    if worst > atol:
        raise RuntimeError(
            f"{path}: the ONNX graph differs from PyTorch by {worst:.2e} (> {atol:g}) at batch "
            f"sizes {differences}"
        )
    return differences
