"""The text model's export folder: everything needed to score raw text, and nothing from this
repository needed to do it.

    model.onnx        input_ids, attention_mask (int64, batch x sequence) -> probabilities
    tokenizer.json    Hugging Face `tokenizers` file: normalisation, byte-level BPE, [CLS],
                      padding to and truncation at max_length, as training encoded text
    labels.json       {"labels": [...]}: the class of each probability column, in order
    model_card.json   the caller's card, the graph's inputs and outputs, and max_length

`score_texts` is the reference scorer for such a folder and imports only onnxruntime,
tokenizers, numpy and the standard library, so what it does a user can do without installing
this project (README: the scoring snippet, which the tests run against it).
"""

from __future__ import annotations

import ctypes
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

MODEL, TOKENIZER, LABELS, CARD = "model.onnx", "tokenizer.json", "labels.json", "model_card.json"
FILES = (MODEL, TOKENIZER, LABELS, CARD)
# the exported graph's names (pipelines.models.text), repeated so scoring imports nothing here
INPUT_IDS, ATTENTION_MASK, PROBABILITIES = "input_ids", "attention_mask", "probabilities"
SCORE_BATCH = 256


def write_text_export(
    folder: Path,
    onnx_path: Path,
    tokenizer_json: Path,
    class_names: list[str],
    card: dict[str, Any],
) -> None:
    """Copy the graph and the tokenizer into `folder` and describe them. Fails before writing
    anything when the graph's output width is not the number of class names, since
    labels.json would then name the wrong columns."""
    import onnx

    from pipelines.errors import PipelineError

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    width = graph.output[0].type.tensor_type.shape.dim[1].dim_value
    if width != len(class_names):
        raise PipelineError(
            f"{onnx_path}: the graph outputs {width} probabilities per text but "
            f"{len(class_names)} class names were given; expected one name per column"
        )
    tokenizer = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    max_length = (tokenizer.get("truncation") or {}).get("max_length")
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(onnx_path, folder / MODEL)
    shutil.copyfile(tokenizer_json, folder / TOKENIZER)
    _write_json(folder / LABELS, {"labels": list(class_names)})
    _write_json(
        folder / CARD,
        {
            **card,
            "max_length": max_length,
            "inputs": {
                INPUT_IDS: {
                    "dtype": "int64",
                    "shape": ["batch", "sequence"],
                    "description": f"token ids from {TOKENIZER}, [CLS] first, then [PAD]; "
                    f"sequence <= max_length",
                },
                ATTENTION_MASK: {
                    "dtype": "int64",
                    "shape": ["batch", "sequence"],
                    "description": "1 for a real token, 0 for padding",
                },
            },
            "outputs": {
                PROBABILITIES: {
                    "dtype": "float32",
                    "shape": ["batch", len(class_names)],
                    "description": f"class probabilities, each row sums to 1; column i is "
                    f"{LABELS}'s labels[i]",
                },
            },
        },
    )


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def score_texts(folder: Path, texts: list[str]) -> list[dict[str, Any]]:
    """For each text, {"label": the most probable class, "probabilities": {label: p}}, from
    the export folder alone. A missing file fails with FileNotFoundError naming it (not a
    PipelineError: this function must not need the repository)."""
    folder = Path(folder)
    for name in (MODEL, TOKENIZER, LABELS):
        if not (folder / name).is_file():
            raise FileNotFoundError(
                f"{folder / name}: missing; an export folder holds {', '.join(FILES)}"
            )
    labels = json.loads((folder / LABELS).read_text(encoding="utf-8"))["labels"]
    tokenizer = Tokenizer.from_file(str(folder / TOKENIZER))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    model = ort.InferenceSession(str(folder / MODEL), options, providers=_providers())
    results: list[dict[str, Any]] = []
    for start in range(0, len(texts), SCORE_BATCH):
        encodings = tokenizer.encode_batch(texts[start : start + SCORE_BATCH])
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        # the tokenizer pads to max_length; columns that are padding in every row change no
        # score and only cost time
        longest = max(int(mask.sum(axis=1).max()), 1)
        (probabilities,) = model.run(
            [PROBABILITIES], {INPUT_IDS: ids[:, :longest], ATTENTION_MASK: mask[:, :longest]}
        )
        for row in probabilities:
            results.append(
                {
                    "label": labels[int(row.argmax())],
                    "probabilities": {name: float(p) for name, p in zip(labels, row, strict=True)},
                }
            )
    return results


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
