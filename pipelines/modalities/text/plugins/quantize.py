"""quantize for text: ONNX FP32 with dynamic batch and sequence axes, checked against
PyTorch at several (batch, length) shapes; ONNX Runtime INT8 dynamic and static (calibrated on
val). Pruning, distillation, QAT and FP16 are built for the tabular models only; quantize.json
says so."""

from __future__ import annotations

from typing import Any

from pipelines.config import PipelineConfig
from pipelines.layout import Layout
from pipelines.modalities.text.plugins.common import encoded_split

# the (batch, length) shapes of the parity check: a single token, odd lengths, the longest
PARITY_SHAPES = ((1, 1), (1, 7), (4, 19), (9, 48))


def _parity_shapes(max_length: int) -> list[tuple[int, int]]:
    return [(b, min(n, max_length)) for b, n in PARITY_SHAPES]


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from pipelines.core.multiclass_quantize import quantize_multiclass
    from pipelines.modalities.text.lightning import load_text_checkpoint
    from pipelines.modalities.text.onnx_variants import export_text_variants, text_parity

    module, tokenizer = load_text_checkpoint(layout.checkpoint)
    classes, pad_id = list(module.hparams.class_names), int(module.hparams.pad_id)
    ids_val, _, _ = encoded_split(layout.split(layout.cleaned, "val"), tokenizer, classes)
    shapes = _parity_shapes(module.model.position.shape[0])
    return quantize_multiclass(
        cfg,
        layout,
        modality="text",
        export=lambda folder: export_text_variants(
            module.model, folder, ids_val, pad_id, cfg.quantize
        ),
        parity=lambda path: text_parity(module.model, path, pad_id, shapes, cfg.seed),
        checked_at=f"shapes {shapes}",
        details={"parity_shapes": [list(s) for s in shapes]},
        artifacts=lambda folder: tokenizer.save(str(folder / "tokenizer.json")),
    )
