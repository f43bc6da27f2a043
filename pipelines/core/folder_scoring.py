"""What every modality's export-folder scorer does alike, importing nothing from this
repository (only onnxruntime, numpy and the standard library), so the scorers that use it
(pipelines.modalities.text.export_folder.score_texts,
pipelines.modalities.image.export_folder.score_image_files) stay usable without installing
this project: copy this file beside theirs.

Every export folder holds model.onnx (-> "probabilities"), labels.json ({"labels": [...]}:
the class of each probability column, in order) and model_card.json, plus the modality's
preprocessing artifact where it has one.
"""

from __future__ import annotations

import ctypes
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

MODEL, LABELS, CARD = "model.onnx", "labels.json", "model_card.json"
# the exported graphs' output name (pipelines.models), repeated so scoring imports nothing here
PROBABILITIES = "probabilities"


def open_folder(
    folder: Path, needed: tuple[str, ...], files: tuple[str, ...]
) -> tuple[list[str], ort.InferenceSession]:
    """The folder's labels and a session on its graph. A missing file of `needed` fails with
    FileNotFoundError naming it and the folder's `files` (not a PipelineError: scoring must
    not need the repository)."""
    for name in needed:
        if not (folder / name).is_file():
            raise FileNotFoundError(
                f"{folder / name}: missing; an export folder holds {', '.join(files)}"
            )
    labels = json.loads((folder / LABELS).read_text(encoding="utf-8"))["labels"]
    options = ort.SessionOptions()
    options.log_severity_level = 3
    model = ort.InferenceSession(str(folder / MODEL), options, providers=_providers())
    return labels, model


def labelled(probabilities: np.ndarray, labels: list[str]) -> list[dict[str, Any]]:
    """For each row, {"label": the most probable class, "probabilities": {label: p}}."""
    return [
        {
            "label": labels[int(row.argmax())],
            "probabilities": {name: float(p) for name, p in zip(labels, row, strict=True)},
        }
        for row in probabilities
    ]


def _providers() -> list[str]:
    """CUDA first only where ONNX Runtime has it and the machine has an NVIDIA GPU. The
    onnxruntime-gpu wheel lists CUDAExecutionProvider whether or not a GPU or the CUDA
    libraries exist, and asking for it then logs a load error on every session; the CUDA
    driver (libcuda, installed with the GPU driver) reporting a device is the check, made
    without torch."""
    if "CUDAExecutionProvider" in ort.get_available_providers() and _cuda_devices() > 0:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _cuda_devices() -> int:
    try:
        driver = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return 0
    count = ctypes.c_int(0)
    if driver.cuInit(0) != 0 or driver.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0
    return count.value
