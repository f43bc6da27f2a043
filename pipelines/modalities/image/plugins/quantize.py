"""quantize for images: ONNX FP32 with a dynamic batch axis, checked against PyTorch at batch
1, 3 and 32; ONNX Runtime INT8 dynamic and INT8 static with per-channel weights, calibrated on
held-out (val) images. Pruning, distillation, QAT and FP16 are built for the tabular models
only; quantize.json says so."""

from __future__ import annotations

from typing import Any

from pipelines.config import PipelineConfig
from pipelines.errors import PipelineError
from pipelines.layout import Layout
from pipelines.modalities.image.plugins.common import (
    class_names,
    image_background,
    image_size,
    split_arrays,
)

PARITY_BATCHES = (1, 3, 32)


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from pipelines.core.multiclass_quantize import quantize_multiclass
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
    raw_val, _ = split_arrays(
        layout.split(layout.cleaned, "val"), size, class_names(layout), image_background(cfg)
    )
    calibration = normalise(raw_val, list(module.hparams.mean), list(module.hparams.std))
    return quantize_multiclass(
        cfg,
        layout,
        modality="image",
        export=lambda folder: export_image_variants(
            module.model, folder, calibration, size, cfg.quantize, cfg.quantize.opset
        ),
        parity=lambda path: image_parity(module.model, path, size, PARITY_BATCHES, cfg.seed),
        checked_at=f"batch sizes {PARITY_BATCHES}",
        details={
            "parity_batches": list(PARITY_BATCHES),
            "calibration_images": min(len(calibration), cfg.quantize.static.calibration_rows),
        },
    )
