"""quantize: every compressed variant of the trained model: ONNX FP32 with parity, ONNX
Runtime INT8 (dynamic, static), and the modality's further variants.

The configured modality's plug-in does the work (pipelines/modalities/registry.py)."""

from stages._cli import Stage

run = Stage("quantize")

if __name__ == "__main__":
    run.main()
