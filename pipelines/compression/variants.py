"""Which PyTorch model each ONNX variant was made from, and whether it is an exact export of it
or a quantized/FP16 copy. The quantize stage writes the compressed models' checkpoints beside
their ONNX files (models/onnx/<source>.ckpt); the trained model's is models/model.ckpt."""

from __future__ import annotations

from pathlib import Path

# compressed models with a PyTorch checkpoint of their own, named as the variants' prefixes
SOURCES = ("pruned", "student", "qat")


def source(variant: str) -> str | None:
    """`pruned_int8_dynamic` -> "pruned"; `int8_static` -> None (the trained model)."""
    return next((s for s in SOURCES if variant == s or variant.startswith(s + "_")), None)


def checkpoint(onnx_dir: Path, trained: Path, variant: str) -> Path:
    name = source(variant)
    return trained if name is None else onnx_dir / f"{name}.ckpt"


def is_exact_export(variant: str) -> bool:
    """An FP32 export of its PyTorch model (parity to 1e-4), not an INT8 or FP16 copy."""
    return variant in ("fp32", "pruned", "student")
