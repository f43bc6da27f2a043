"""The text model's export folder: everything needed to score raw text, and nothing from this
repository needed to do it.

    model.onnx        input_ids, attention_mask (int64, batch x sequence) -> probabilities
    tokenizer.json    Hugging Face `tokenizers` file: normalisation, byte-level BPE, [CLS],
                      padding to and truncation at max_length, as training encoded text
    labels.json       {"labels": [...]}: the class of each probability column, in order
    model_card.json   the caller's card, the graph's inputs and outputs, and max_length
    examples/         texts.json: {"texts": [...], "labels": [...]}, test texts to score

`score_texts` is the reference scorer for such a folder and imports only onnxruntime,
tokenizers, numpy, the standard library and pipelines.core.folder_scoring (itself only
onnxruntime, numpy and the standard library), so what it does a user can do without
installing this project (README: the scoring snippet, which the tests run against it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from pipelines.core.folder_scoring import CARD, LABELS, MODEL, PROBABILITIES, labelled, open_folder

TOKENIZER = "tokenizer.json"
FILES = (MODEL, TOKENIZER, LABELS, CARD)
# the exported graph's names (pipelines.models.text), repeated so scoring imports nothing here
INPUT_IDS, ATTENTION_MASK = "input_ids", "attention_mask"
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
    from pipelines.core.export_folder import checked_graph, write_folder

    checked_graph(onnx_path, class_names, "text")
    tokenizer = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    max_length = (tokenizer.get("truncation") or {}).get("max_length")
    inputs = {
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
    }
    write_folder(
        folder,
        onnx_path,
        class_names=class_names,
        card={**card, "max_length": max_length},
        inputs=inputs,
        artifacts={TOKENIZER: tokenizer_json},
    )


def write_text_examples(folder: Path, texts: list[str], labels: list[str]) -> Path:
    """examples/texts.json: texts to score (the scoring snippet reads them) and their labels."""
    from pipelines.core.export_folder import EXAMPLES, _write_json

    path = folder / EXAMPLES / "texts.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_json(path, {"texts": list(texts), "labels": list(labels)})
    return path


def score_texts(folder: Path, texts: list[str]) -> list[dict[str, Any]]:
    """For each text, {"label": the most probable class, "probabilities": {label: p}}, from
    the export folder alone. A missing file fails with FileNotFoundError naming it (not a
    PipelineError: this function must not need the repository)."""
    folder = Path(folder)
    labels, model = open_folder(folder, (MODEL, TOKENIZER, LABELS), FILES)
    tokenizer = Tokenizer.from_file(str(folder / TOKENIZER))
    results: list[dict[str, Any]] = []
    for start in range(0, len(texts), SCORE_BATCH):
        ids, mask, _ = encode_texts(tokenizer, texts[start : start + SCORE_BATCH])
        (probabilities,) = model.run([PROBABILITIES], {INPUT_IDS: ids, ATTENTION_MASK: mask})
        results.extend(labelled(probabilities, labels))
    return results


def encode_texts(
    tokenizer: Tokenizer, texts: list[str]
) -> tuple[np.ndarray, np.ndarray, list[bool]]:
    """The graph's int64 input_ids and attention_mask for `texts`, as training encoded them,
    cut to the longest text's tokens, and whether each text was truncated at max_length (the
    model server reports it). The tokenizer pads to max_length; columns that are padding in
    every row change no score and only cost time."""
    return encoding_arrays(tokenizer.encode_batch(texts))


def encoding_arrays(encodings: list[Any]) -> tuple[np.ndarray, np.ndarray, list[bool]]:
    """encode_texts from the tokenizer's encodings (the model server keeps them for its drift
    measurements rather than encoding twice)."""
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    longest = max(int(mask.sum(axis=1).max()), 1)
    return ids[:, :longest], mask[:, :longest], [bool(e.overflowing) for e in encodings]
