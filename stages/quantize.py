"""quantize: ONNX FP32 export, then ONNX Runtime INT8 (dynamic, and static calibrated on val) and
an FP16 copy for GPUs."""

from __future__ import annotations

from typing import Any

import numpy as np

from pipelines.config import PipelineConfig
from pipelines.datamodule import model_inputs
from pipelines.io import read_json, staged_outputs, write_json
from pipelines.layout import Layout
from pipelines.onnx_export import export_onnx
from pipelines.progress import stage_steps
from pipelines.quantization import dynamic_int8, fp16, preprocess, static_int8
from pipelines.training import load_checkpoint
from stages._cli import main


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    q = cfg.quantize
    module = load_checkpoint(layout.checkpoint)
    features = read_json(layout.features_file)["features"]
    x_val, _ = model_inputs(cfg, layout, features, ("val",))["val"]
    rng = np.random.default_rng(cfg.seed)
    calibration = x_val[rng.permutation(len(x_val))[: q.static.calibration_rows]]
    with staged_outputs(layout.staging, layout.onnx_dir, layout.quantize_metrics) as (
        folder,
        metrics_file,
    ):
        folder.mkdir()
        fp32, prepared = folder / "model_fp32.onnx", folder / "model_fp32_prepared.onnx"
        steps = 2 + q.dynamic.enabled + q.static.enabled + q.fp16.enabled
        with stage_steps("quantize", steps) as step:
            export_onnx(module.model, x_val.shape[1:], fp32, q.opset)
            step("exported FP32 ONNX")
            preprocess(fp32, prepared)
            step("pre-processed for quantization")
            if q.dynamic.enabled:
                dynamic_int8(
                    prepared, folder / "model_int8_dynamic.onnx", q.dynamic, q.keep_input_fp32
                )
                step("dynamic INT8")
            if q.static.enabled:
                static_int8(
                    prepared,
                    folder / "model_int8_static.onnx",
                    calibration,
                    q.static,
                    q.keep_input_fp32,
                )
                step(f"static INT8 ({q.static.calibration_method} calibration)")
            if q.fp16.enabled:
                # from the exported graph, not the INT8 tools' pre-processed one
                fp16(fp32, folder / "model_fp16.onnx")
                step("FP16")
        prepared.unlink()
        sizes = {
            p.stem.removeprefix("model_"): p.stat().st_size for p in sorted(folder.glob("*.onnx"))
        }
        metrics = {
            "size_bytes": sizes,
            "size_ratio_vs_fp32": {k: v / sizes["fp32"] for k, v in sizes.items() if k != "fp32"},
            "calibration_rows": len(calibration),
        }
        write_json(metrics_file, metrics)
    return metrics


if __name__ == "__main__":
    main("quantize", run)
