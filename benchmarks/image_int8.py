"""INT8 speed and size of the image CNN against ONNX Runtime FP32 of the same model, and where
the time goes.

    python benchmarks/image_int8.py [--hidden 64 256] [--batches 1 32] [--repeats 30] [--record]

For each width: the visual_inspection MoE CNN (three conv stages of hidden/4, hidden/2 and
hidden channels, one MoE block of 4 experts, top-2) at 64x64, exported and quantized exactly as
the quantize stage does (pipelines.modalities.image.onnx_variants.export_image_variants: static
INT8 is QDQ
with per-channel weights, calibrated on 128 simulated surfaces; dynamic INT8 quantizes the
matrix products only). One more variant backs that choice: dynamic INT8 with Conv quantized
too (ConvInteger). Weights are untrained: latency depends on shapes, not on values.

Latency: every variant in the same process, timed round-robin (pipelines.evaluation.
interleaved_latency) on the same 512 normalised simulated images, same threads. Where the time
goes: ONNX Runtime's profiler, total node time per operator type, for FP32 and static INT8 at
the largest batch size.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from int8_table import int8_arguments, print_speedups, variant_rows
from onnxruntime.quantization import QuantType, quantize_dynamic
from ort_profile import operator_profile
from results_file import write_results

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipelines.io import quiet_datasets  # noqa: E402
from pipelines.modalities.image.config import NO_IMAGE_DIRT, ImageSimulatorConfig  # noqa: E402
from pipelines.modalities.image.onnx_variants import (  # noqa: E402
    IMAGE_QUANTIZED_OPS,
    export_image_variants,
    image_feed,
    image_router_nodes,
    preprocess_image,
)
from pipelines.modalities.image.preprocess import channel_statistics, decode_images, normalise  # noqa: E402
from pipelines.modalities.image.simulator import simulate_images  # noqa: E402
from pipelines.models.image import IMAGES, PROBABILITIES, build_image_model  # noqa: E402
from pipelines.quantization import _quiet_root_logger  # noqa: E402
from pipelines.schema.compression import QuantizeConfig, StaticQuantConfig  # noqa: E402
from pipelines.schema.model import ModelConfig  # noqa: E402

SIZE, OPSET = 64, 17


def surfaces(n: int) -> np.ndarray:
    """n simulated surfaces, normalised as training does."""
    quiet_datasets()
    cfg = ImageSimulatorConfig(height=SIZE, width=SIZE, dirt=NO_IMAGE_DIRT)
    pixels = decode_images(simulate_images(n, seed=0, cfg=cfg), SIZE)
    mean, std = channel_statistics(pixels)
    return normalise(pixels, mean, std)


def op_profile(path: Path, images: np.ndarray, threads: int, runs: int) -> dict:
    """Share of total node time per operator type (ONNX Runtime's profiler)."""
    return operator_profile(path, {IMAGES: images}, PROBABILITIES, threads, runs)


def dynamic_with_conv(fp32: Path, out: Path) -> Path:
    """Dynamic INT8 with Conv quantized too (ConvInteger): the variant quantize does not make."""
    prepared = out.with_name("prepared.onnx")
    preprocess_image(fp32, prepared)
    with _quiet_root_logger():
        quantize_dynamic(
            str(prepared),
            str(out),
            weight_type=QuantType.QInt8,
            op_types_to_quantize=IMAGE_QUANTIZED_OPS,
            nodes_to_exclude=image_router_nodes(prepared),
        )
    prepared.unlink()
    return out


def measure(hidden: int, images: np.ndarray, args: argparse.Namespace, work: Path) -> dict:
    cfg = ModelConfig(
        name="image_cnn_moe",
        hidden_dim=hidden,
        ffn_dim=hidden,
        num_blocks=1,
        num_experts=4,
        top_k=2,
        dropout=0.0,
    )
    torch.manual_seed(0)
    model = build_image_model(4, SIZE, cfg).eval()
    folder = work / f"hidden{hidden}"
    # as conf/experiment/visual_inspection.yaml quantizes: per-channel static weights
    quantize = QuantizeConfig(static=StaticQuantConfig(per_channel=True))
    paths = export_image_variants(model, folder, images[:128], SIZE, quantize, OPSET)
    paths["int8_dynamic_conv"] = dynamic_with_conv(paths["fp32"], folder / "dyn_conv.onnx")
    result: dict[str, Any] = {"parameters": sum(p.numel() for p in model.parameters())}
    result.update(variant_rows(paths, image_feed, images, args.batches, args.repeats, args.threads))
    largest = images[: max(args.batches)]
    result["profile"] = {
        name: op_profile(paths[name], largest, args.threads, args.repeats)
        for name in ("fp32", "int8_static")
    }
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = int8_arguments(__doc__.splitlines()[0], [1, 32])
    parser.add_argument("--images", type=int, default=512)
    args = parser.parse_args(argv)
    images = surfaces(args.images)
    with tempfile.TemporaryDirectory() as tmp:
        widths = {str(h): measure(h, images, args, Path(tmp)) for h in args.hidden}
    results = {
        "command": "python benchmarks/image_int8.py " + " ".join(argv or sys.argv[1:]),
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": args.threads},
        "widths": widths,
    }
    print_speedups(widths, ("int8_dynamic", "int8_static", "int8_dynamic_conv"), args.batches)
    write_results("image_int8", results, args.record)
    return results


if __name__ == "__main__":
    main()
