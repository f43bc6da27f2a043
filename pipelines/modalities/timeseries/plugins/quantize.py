"""quantize for series: ONNX FP32 with a dynamic batch axis, checked against PyTorch at
batch 1, 3 and 32; ONNX Runtime INT8 dynamic and static (calibrated on val windows)."""

from __future__ import annotations

from typing import Any

from pipelines.config import PipelineConfig
from pipelines.layout import Layout
from pipelines.modalities.timeseries.plugins.common import class_names, split_windows

PARITY_BATCHES = (1, 3, 32)


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from pipelines.core.multiclass_quantize import quantize_multiclass
    from pipelines.modalities.timeseries.lightning import load_series_checkpoint
    from pipelines.modalities.timeseries.onnx_variants import (
        export_series_variants,
        series_parity,
    )
    from pipelines.modalities.timeseries.series import normalise

    module = load_series_checkpoint(layout.checkpoint)
    hp = module.hparams
    raw_val, _ = split_windows(layout.split(layout.cleaned, "val"), cfg, class_names(layout))
    calibration = normalise(raw_val, list(hp.mean), list(hp.std))
    shape = (len(hp.channels), int(hp.window))
    return quantize_multiclass(
        cfg,
        layout,
        modality="timeseries",
        export=lambda folder: export_series_variants(
            module.model, folder, calibration, cfg.quantize, cfg.quantize.opset
        ),
        parity=lambda path: series_parity(module.model, path, shape, PARITY_BATCHES, cfg.seed),
        checked_at=f"batch sizes {PARITY_BATCHES}",
        details={
            "parity_batches": list(PARITY_BATCHES),
            "calibration_windows": min(len(calibration), cfg.quantize.static.calibration_rows),
        },
    )
