"""The tabular quantize stage: every compressed variant of the trained model. ONNX FP32 export;
ONNX Runtime
INT8 (dynamic, and static calibrated on val); an FP16 copy for GPUs; and, each a short
fine-tune of the trained model, structured pruning, a distilled dense student and
quantization-aware training (with INT8 copies where declared). Compressed models' PyTorch
checkpoints go beside their ONNX files, so export can check parity against them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.compression.distillation import distill
from pipelines.compression.finetune import FineTuning
from pipelines.compression.pruning import iterative_prune, prunable
from pipelines.compression.qat import export_qat_onnx, qat_fine_tune, strip_fake_quant
from pipelines.config import PipelineConfig
from pipelines.datamodule import TabularDataModule, model_inputs
from pipelines.io import read_json, staged_outputs, write_json
from pipelines.layout import Layout
from pipelines.lightning_module import RiskClassifier
from pipelines.models.moe import count_parameters
from pipelines.onnx_export import export_onnx
from pipelines.progress import stage_steps
from pipelines.quantization import dynamic_int8, fp16, preprocess, static_int8
from pipelines.schema.compression import QuantizeConfig
from pipelines.training import load_checkpoint, save_checkpoint


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    q = cfg.quantize
    module = load_checkpoint(layout.checkpoint)
    features = read_json(layout.features_file)["features"]
    fine_tunes = q.prune.enabled or q.distill.enabled or q.qat.enabled
    data = model_inputs(cfg, layout, features, ("train", "val") if fine_tunes else ("val",))
    x_val, _ = data["val"]
    rng = np.random.default_rng(cfg.seed)
    calibration = x_val[rng.permutation(len(x_val))[: q.static.calibration_rows]]
    sample_shape = x_val.shape[1:]

    def datamodule() -> TabularDataModule:
        return TabularDataModule.from_config(cfg, data["train"], data["val"], features)

    tuning = FineTuning.from_config(cfg)

    def from_trained(method: Callable[..., Any], settings: Any, **extra: Any) -> Any:
        """`method` run on a fresh copy of the trained model and the train/val loaders."""
        return method(load_checkpoint(layout.checkpoint), datamodule(), settings, tuning, **extra)

    compression: dict[str, Any] = {"trained_parameters": count_parameters(module.model)}
    with staged_outputs(layout.staging, layout.onnx_dir, layout.quantize_metrics) as (
        folder,
        metrics_file,
    ):
        folder.mkdir()
        fp32, prepared = folder / "model_fp32.onnx", folder / "model_fp32_prepared.onnx"
        with stage_steps("quantize", _step_count(q)) as step:
            export_onnx(module.model, sample_shape, fp32, q.opset)
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
            if q.prune.enabled and not prunable(module):
                # on by default for every model; a model without feed-forward blocks says so
                # instead of failing the stage (export.select=pruned then names what is missing)
                reason = f"skipped: {cfg.model.name} has no feed-forward blocks to prune"
                compression["pruned"] = {"skipped": reason}
                print(f"quantize: pruning {reason}")
                step("pruning skipped")
            elif q.prune.enabled:
                pruned, history = from_trained(iterative_prune, q.prune)
                _write_compressed(folder, "pruned", pruned, sample_shape, q, q.prune.int8)
                compression["pruned"] = {
                    "parameters": count_parameters(pruned.model),
                    "ffn_dim": pruned.model_cfg.ffn_dim,
                    **(
                        {"num_heads": pruned.model_cfg.num_heads}
                        if pruned.model_cfg.is_sequence
                        else {}
                    ),
                    "steps": history,
                }
                step(f"pruned to ffn_dim {pruned.model_cfg.ffn_dim} in {len(history)} steps")
            if q.distill.enabled:
                student, info = from_trained(distill, q.distill)
                _write_compressed(folder, "student", student, sample_shape, q, q.distill.int8)
                compression["student"] = {"model": student.model_cfg.name, **info}
                size = count_parameters(student.model)["total"]
                step(f"distilled into a {size:,}-parameter student")
            if q.qat.enabled:
                qat_model, info = from_trained(
                    qat_fine_tune, q.qat, keep_input_fp32=q.keep_input_fp32
                )
                export_qat_onnx(
                    qat_model.model, sample_shape, folder / "model_qat_int8.onnx", q.opset
                )
                # the fine-tuned float weights: what export checks the QDQ graph against
                save_checkpoint(strip_fake_quant(qat_model), folder / "qat.ckpt", {})
                compression["qat"] = info
                step("quantization-aware training")
        sizes = {
            p.stem.removeprefix("model_"): p.stat().st_size for p in sorted(folder.glob("*.onnx"))
        }
        metrics = {
            "size_bytes": sizes,
            "size_ratio_vs_fp32": {k: v / sizes["fp32"] for k, v in sizes.items() if k != "fp32"},
            "calibration_rows": len(calibration),
            "compression": compression,
        }
        write_json(metrics_file, metrics)
    return metrics


def _write_compressed(
    folder: Path,
    name: str,
    module: RiskClassifier,
    sample_shape: tuple[int, ...],
    q: QuantizeConfig,
    int8: bool,
) -> None:
    """`<name>.ckpt`, `model_<name>.onnx` and, when asked, `model_<name>_int8_dynamic.onnx`
    (a compressed model quantized: the variants compose)."""
    save_checkpoint(module, folder / f"{name}.ckpt", {})
    onnx_path = folder / f"model_{name}.onnx"
    export_onnx(module.model, sample_shape, onnx_path, q.opset)
    if int8:
        prepared = folder / f"model_{name}_prepared.onnx"
        preprocess(onnx_path, prepared)
        dynamic_int8(
            prepared, folder / f"model_{name}_int8_dynamic.onnx", q.dynamic, q.keep_input_fp32
        )
        prepared.unlink()


def _step_count(q: QuantizeConfig) -> int:
    return (
        2
        + q.dynamic.enabled
        + q.static.enabled
        + q.fp16.enabled
        + q.prune.enabled
        + q.distill.enabled
        + q.qat.enabled
    )
