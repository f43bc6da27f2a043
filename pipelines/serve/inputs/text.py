"""Text: {"texts": ["...", ...]}, encoded by the export folder's own tokenizer with the export
folder's own code (pipelines.modalities.text.export_folder.encode_texts, what its scorer
runs), so the server and the folder's snippet cannot encode a text differently. A batch is
padded to its longest text: measured against padding to max_length in docs/benchmarks/serving.md."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from pipelines.errors import PipelineError
from pipelines.modalities.text.drift_features import FEATURES, text_drift_rows
from pipelines.modalities.text.export_folder import (
    ATTENTION_MASK,
    INPUT_IDS,
    TOKENIZER,
    encode_texts,
    encoding_arrays,
)
from pipelines.serve.config import ServeConfig
from pipelines.serve.inputs.base import InputAdapter, Parsed
from pipelines.serve.requests import BadRequest, check_strings, listed, parse_json

WARM_TEXT = "warm up"


class TextInput(InputAdapter):
    modality = "text"
    example = '{"texts": ["..."]}'
    input_key = INPUT_IDS

    def __init__(self, tokenizer: Tokenizer, pad_id: int, max_length: int, reject: bool) -> None:
        self.tokenizer, self.pad_id, self.max_length = tokenizer, pad_id, max_length
        self.reject_too_long = reject
        # the tokenizer's whole definition (vocabulary, normalizer, padding, truncation)
        vocabulary = hashlib.sha256(tokenizer.to_str().encode("utf-8")).hexdigest()
        self._signature = json.dumps([self.modality, vocabulary, reject])

    @classmethod
    def open(
        cls, folder: Path, card: dict[str, Any], session: ort.InferenceSession, cfg: ServeConfig
    ) -> TextInput:
        path = folder / TOKENIZER
        if not path.is_file():
            raise PipelineError(f"{path}: not found; a text export folder ships its tokenizer")
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as err:  # the Rust library's own exception type
            raise PipelineError(f"{path}: not a tokenizers file: {err}") from None
        padding, truncation = tokenizer.padding, tokenizer.truncation
        if not padding or not truncation:
            raise PipelineError(
                f"{path}: expected padding and truncation set (the export writes both, at "
                f"max_length); found padding={json.dumps(padding)}, "
                f"truncation={json.dumps(truncation)}"
            )
        names = {i.name for i in session.get_inputs()}
        if names != {INPUT_IDS, ATTENTION_MASK}:
            raise PipelineError(
                f"{folder / 'model.onnx'}: inputs {sorted(names)}; expected "
                f"{INPUT_IDS} and {ATTENTION_MASK}"
            )
        reject = cfg.text.on_too_long == "reject"
        return cls(tokenizer, int(padding["pad_id"]), int(truncation["max_length"]), reject)

    def parse(self, body: bytes, content_type: str, max_rows: int) -> Parsed:
        texts = listed(parse_json(body), "texts", self.example, "text", max_rows)
        for i, text in enumerate(check_strings(texts, "texts", "a string")):
            if not text.strip():
                # the model would answer [CLS] alone with a confident-looking class
                raise BadRequest(422, "empty_text", f"field 'texts[{i}]': empty text")
        encodings = self.tokenizer.encode_batch(texts)
        ids, mask, truncated = encoding_arrays(encodings)
        cut = [i for i, was in enumerate(truncated) if was]
        if cut and self.reject_too_long:
            raise BadRequest(
                422,
                "text_too_long",
                f"field 'texts[{cut[0]}]': longer than the tokenizer's max_length = "
                f"{self.max_length} tokens (serve.text.on_too_long = reject)",
            )
        notes = {"truncated": cut} if cut else {}
        return Parsed((ids, mask), len(texts), notes, text_drift_rows(texts, encodings))

    @property
    def drift_features(self) -> list[str]:
        return FEATURES

    def collate(self, parts: list[Any]) -> dict[str, np.ndarray]:
        if len(parts) == 1:
            ids, mask = parts[0]
            return {INPUT_IDS: ids, ATTENTION_MASK: mask}
        # each request is cut to its own longest text: pad all to the batch's longest, as
        # the tokenizer pads (pad_id, mask 0), which the model's attention mask ignores
        longest = max(ids.shape[1] for ids, _ in parts)
        rows = sum(len(ids) for ids, _ in parts)
        ids_out = np.full((rows, longest), self.pad_id, dtype=np.int64)
        mask_out = np.zeros((rows, longest), dtype=np.int64)
        start = 0
        for ids, mask in parts:
            ids_out[start : start + len(ids), : ids.shape[1]] = ids
            mask_out[start : start + len(ids), : ids.shape[1]] = mask
            start += len(ids)
        return {INPUT_IDS: ids_out, ATTENTION_MASK: mask_out}

    def warm_input(self, rows: int) -> Any:
        ids, mask, _ = encode_texts(self.tokenizer, [WARM_TEXT] * rows)
        return ids, mask
