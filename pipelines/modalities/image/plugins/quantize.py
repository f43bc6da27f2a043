"""quantize for images: ONNX FP32 with a dynamic batch axis, checked against PyTorch at batch
1, 3 and 32; ONNX Runtime INT8 dynamic and INT8 static with per-channel weights, calibrated on
held-out (val) images. Pruning, distillation, QAT and FP16 are built for the tabular models
only; quantize.json says so."""

from __future__ import annotations

from typing import Any

from pipelines.config import PipelineConfig
from pipelines.errors import PipelineError
from pipelines.io import staged_outputs, write_json
from pipelines.layout import Layout
from pipelines.modalities.image.plugins.common import (
    class_names,
    image_size,
    split_arrays,
    variant_file,
)

PARITY_BATCHES = (1, 3, 32)
NOT_FOR_IMAGES = "not built for image models (tabular only: pipelines/compression)"


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from pipelines.modalities.image.lightning import load_image_checkpoint
    from pipelines.modalities.image.onnx_variants import export_image_variants, image_parity
    from pipelines.modalities.image.preprocess import normalise

    module = load_image_checkpoint(layout.checkpoint)
    size = image_size(cfg)
    if int(module.hparams.image_size) != size:
        raise PipelineError(
            f"{layout.checkpoint}: the model was trained on {module.hparams.image_size} px "
            f"images but data.image.clean.size.height = {size}; rerun train"
        )
    # calibration on images the model never trained on, normalised as training did
    raw_val, _ = split_arrays(layout.split(layout.cleaned, "val"), size, class_names(layout))
    calibration = normalise(raw_val, list(module.hparams.mean), list(module.hparams.std))
    outputs = (layout.onnx_dir, layout.quantize_metrics)
    with staged_outputs(layout.staging, *outputs) as (folder, metrics_file):
        written = export_image_variants(
            module.model, folder, calibration, size, cfg.quantize, cfg.quantize.opset
        )
        variants: dict[str, Any] = {}
        for name, path in written.items():
            final = variant_file(folder, name)
            path.rename(final)
            diff = image_parity(module.model, final, size, PARITY_BATCHES, cfg.seed)
            variants[name] = {"size_bytes": final.stat().st_size, "max_abs_diff_vs_pytorch": diff}
        fp32_diff = variants["fp32"]["max_abs_diff_vs_pytorch"]
        if fp32_diff > cfg.export.parity_atol:
            raise PipelineError(
                f"{layout.checkpoint}: the ONNX FP32 export differs from PyTorch by "
                f"{fp32_diff:.2e} at batch sizes {PARITY_BATCHES} (config key "
                f"'export.parity_atol' = {cfg.export.parity_atol}); expected a faithful export"
            )
        metrics = {
            "modality": "image",
            "variants": variants,
            "parity_batches": list(PARITY_BATCHES),
            "calibration_images": min(len(calibration), cfg.quantize.static.calibration_rows),
            "skipped": dict.fromkeys(("fp16", "pruned", "student", "qat_int8"), NOT_FOR_IMAGES),
        }
        write_json(metrics_file, metrics)
    return metrics
