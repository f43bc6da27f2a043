"""quantize for text: ONNX FP32 with dynamic batch and sequence axes, checked against
PyTorch at several (batch, length) shapes; ONNX Runtime INT8 dynamic and static (calibrated on
val). Pruning, distillation, QAT and FP16 are built for the tabular models only; quantize.json
says so."""

from __future__ import annotations

from typing import Any

from pipelines.config import PipelineConfig
from pipelines.errors import PipelineError
from pipelines.io import staged_outputs, write_json
from pipelines.layout import Layout
from pipelines.modalities.text.plugins.common import (
    encoded_split,
    variant_file,
)

# the (batch, length) shapes of the parity check: a single token, odd lengths, the longest
PARITY_SHAPES = ((1, 1), (1, 7), (4, 19), (9, 48))
NOT_FOR_TEXT = "not built for text models (tabular only: pipelines/compression)"


def _parity_shapes(max_length: int) -> list[tuple[int, int]]:
    return [(b, min(n, max_length)) for b, n in PARITY_SHAPES]


# --- quantize ----------------------------------------------------------------------------------


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from pipelines.modalities.text.lightning import load_text_checkpoint
    from pipelines.modalities.text.onnx_variants import export_text_variants, text_parity

    module, tokenizer = load_text_checkpoint(layout.checkpoint)
    classes, pad_id = list(module.hparams.class_names), int(module.hparams.pad_id)
    ids_val, _, _ = encoded_split(layout.split(layout.cleaned, "val"), tokenizer, classes)
    shapes = _parity_shapes(module.model.position.shape[0])
    outputs = (layout.onnx_dir, layout.quantize_metrics)
    with staged_outputs(layout.staging, *outputs) as (folder, metrics_file):
        written = export_text_variants(module.model, folder, ids_val, pad_id, cfg.quantize)
        variants: dict[str, Any] = {}
        for name, path in written.items():
            final = variant_file(folder, name)
            path.rename(final)
            diff = text_parity(module.model, final, pad_id, shapes, cfg.seed)
            variants[name] = {"size_bytes": final.stat().st_size, "max_abs_diff_vs_pytorch": diff}
        fp32_diff = variants["fp32"]["max_abs_diff_vs_pytorch"]
        if fp32_diff > cfg.export.parity_atol:
            raise PipelineError(
                f"{layout.checkpoint}: the ONNX FP32 export differs from PyTorch by "
                f"{fp32_diff:.2e} at shapes {shapes} (config key 'export.parity_atol' = "
                f"{cfg.export.parity_atol}); expected a faithful export"
            )
        tokenizer.save(str(folder / "tokenizer.json"))
        metrics = {
            "modality": "text",
            "variants": variants,
            "parity_shapes": [list(s) for s in shapes],
            "skipped": {
                "fp16": NOT_FOR_TEXT,
                "pruned": NOT_FOR_TEXT,
                "student": NOT_FOR_TEXT,
                "qat_int8": NOT_FOR_TEXT,
            },
        }
        write_json(metrics_file, metrics)
    return metrics
