"""What an input adapter is: the one modality-specific part of the server. It turns a /predict
body into one request's model input (or a BadRequest naming the field), collates the inputs
of the requests sharing a batch into the graph's feeds, and makes the warm-up input. Batching,
metrics, releases and everything else in pipelines/serve never look inside."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from pipelines.serve.config import ServeConfig


@dataclass
class Parsed:
    """One request's validated input."""

    data: Any  # what this adapter's collate takes: an array, or arrays per feed
    rows: int  # how many answers the request gets (rows, texts, images)
    # said back to the client in answer headers and body (text: which texts were truncated)
    notes: dict[str, Any] = field(default_factory=dict)
    # [rows, len(adapter.drift_features)]: what the drift gauges measure of each input, taken
    # while parsing, where the raw input still is (a text's characters, an image's file size)
    drift: np.ndarray | None = None


class InputAdapter(ABC):
    """One modality's requests. A subclass is registered under the modality its export
    folder's card names (pipelines.serve.inputs.ADAPTERS)."""

    modality: str = ""
    # the /predict body this adapter reads, for the error a body without its field gets
    example: str = ""

    # the key of the card's "inputs" that marks this modality's graph (older cards have no
    # "task")
    input_key: str = ""
    # parse on a worker thread rather than the event loop: decoding an image takes long
    # enough to stall every other request; parsing JSON rows does not, and the thread
    # hand-off would cost more than it saves
    parse_off_loop: bool = False

    @classmethod
    def recognises(cls, card: dict[str, Any]) -> bool:
        """Whether a card without a "task" describes a graph of this modality."""
        inputs = card.get("inputs")
        return isinstance(inputs, dict) and cls.input_key in inputs

    @classmethod
    @abstractmethod
    def open(
        cls, folder: Path, card: dict[str, Any], session: ort.InferenceSession, cfg: ServeConfig
    ) -> InputAdapter:
        """The adapter of one loaded export folder; a PipelineError naming the file and key
        when the folder does not hold what this modality needs."""

    # set by each adapter's constructor: see input_signature
    _signature: str = ""

    @property
    def input_signature(self) -> str:
        """What decides how a body becomes the graph's feeds (feature order, tokenizer,
        preprocessing, limits): two adapters with the same signature give the same feeds for
        any body, so a shadow can be scored on the primary's (pipelines.serve.shadow)."""
        return self._signature

    @abstractmethod
    def parse(self, body: bytes, content_type: str, max_rows: int) -> Parsed:
        """A /predict body as this model's input; raises only BadRequest."""

    @abstractmethod
    def collate(self, parts: list[Any]) -> dict[str, np.ndarray]:
        """The graph's feeds for the `data` of the requests sharing one inference, in order."""

    @abstractmethod
    def warm_input(self, rows: int) -> Any:
        """A `data` of `rows` rows for the warm-up inferences."""

    @property
    def drift_features(self) -> list[str]:
        """The names of what `Parsed.drift` holds, in order: the features the export folder's
        reference_profile.json must profile for the drift gauges (none: no gauges)."""
        return []
