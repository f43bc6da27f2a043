"""The quantize stage for a multi-class model, whatever its modality: its ONNX variants
written as models/onnx/model_<variant>.onnx, each checked against PyTorch, the FP32 one
required to be faithful, and metrics/quantize.json. The tabular model compressions (pruning,
distillation, QAT, FP16) are not built for these models; quantize.json says so.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipelines.config import PipelineConfig
from pipelines.core.onnx_variants import FP32, variant_file
from pipelines.errors import PipelineError
from pipelines.io import staged_outputs, write_json
from pipelines.layout import Layout

COMPRESSIONS = ("fp16", "pruned", "student", "qat_int8")


def quantize_multiclass(
    cfg: PipelineConfig,
    layout: Layout,
    *,
    modality: str,
    export: Callable[[Path], dict[str, Path]],
    parity: Callable[[Path], float],
    checked_at: str,
    details: dict[str, Any],
    artifacts: Callable[[Path], None] = lambda folder: None,
) -> dict[str, Any]:
    """`export(folder)` writes the variants (pipelines.core.onnx_variants.export_variants);
    `parity(path)` is one file's largest probability error against PyTorch, over inputs
    `checked_at` describes; `details` go into quantize.json after the variants;
    `artifacts(folder)` saves the modality's preprocessing artifact beside the graphs.
    `modality` names the models in the skipped compressions' reason ("text", "image")."""
    outputs = (layout.onnx_dir, layout.quantize_metrics)
    with staged_outputs(layout.staging, *outputs) as (folder, metrics_file):
        written = export(folder)
        variants: dict[str, Any] = {}
        for name, path in written.items():
            final = variant_file(folder, name)
            path.rename(final)
            variants[name] = {
                "size_bytes": final.stat().st_size,
                "max_abs_diff_vs_pytorch": parity(final),
            }
        fp32_diff = variants[FP32]["max_abs_diff_vs_pytorch"]
        if fp32_diff > cfg.export.parity_atol:
            raise PipelineError(
                f"{layout.checkpoint}: the ONNX FP32 export differs from PyTorch by "
                f"{fp32_diff:.2e} at {checked_at} (config key 'export.parity_atol' = "
                f"{cfg.export.parity_atol}); expected a faithful export"
            )
        artifacts(folder)
        not_built = f"not built for {modality} models (tabular only: pipelines/compression)"
        metrics = {
            "modality": modality,
            "variants": variants,
            **details,
            "skipped": dict.fromkeys(COMPRESSIONS, not_built),
        }
        write_json(metrics_file, metrics)
    return metrics
