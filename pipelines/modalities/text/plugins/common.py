"""What the text plug-ins of several stages share: the canonical columns, the label map,
the cleaning rules as configured, token ids of a split file, the ONNX files' names."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.config import PipelineConfig
from pipelines.errors import PipelineError
from pipelines.io import no_cache_files, read_json, read_split
from pipelines.layout import Layout
from pipelines.modalities.text import COLUMNS
from pipelines.modalities.text.rules_config import TextCleanConfig

TEXT, LABEL = COLUMNS
__all__ = ["no_cache_files"]  # re-exported: the text plug-ins import it from here


def clean_rules(cfg: PipelineConfig) -> TextCleanConfig:
    """The configured rules, on the canonical columns ingest wrote."""
    return dataclasses.replace(cfg.data.text.clean, text_column=TEXT, label_column=LABEL)


def class_names(layout: Layout) -> list[str]:
    return list(read_json(layout.schema_file)["classes"])


def encoded_split(
    path: Path, tokenizer: Any, classes: list[str]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Token ids (n, max_length), class indices (n,) and the texts of one split file."""
    from pipelines.modalities.text.tokenizer import encode

    ds = read_split(path)
    texts = [t or "" for t in ds[TEXT][:]]
    index = {name: i for i, name in enumerate(classes)}
    labels = ds[LABEL][:]
    unknown = sorted({v for v in labels if v not in index})
    if unknown:
        raise PipelineError(
            f"{path}: label(s) {unknown[:3]} not in the label map of {len(classes)} intents "
            "(data/ingested/schema.json); rerun ingest"
        )
    ids, _ = encode(tokenizer, texts)
    return ids, np.array([index[v] for v in labels], dtype=np.int64), texts
