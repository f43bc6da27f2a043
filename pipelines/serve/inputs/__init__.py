"""The input adapters, keyed by the modality a model card names: the one place the server
learns what a request body holds. A new modality registers its adapter here."""

from __future__ import annotations

from typing import Any

from pipelines.errors import PipelineError
from pipelines.serve.inputs.base import InputAdapter, Parsed
from pipelines.serve.inputs.image import ImageInput
from pipelines.serve.inputs.series import SeriesInput
from pipelines.serve.inputs.tabular import TabularInput
from pipelines.serve.inputs.text import TextInput

ADAPTERS: dict[str, type[InputAdapter]] = {
    adapter.modality: adapter for adapter in (TabularInput, TextInput, ImageInput, SeriesInput)
}

__all__ = ["ADAPTERS", "InputAdapter", "Parsed", "adapter_class"]


def adapter_class(card: dict[str, Any], source: str) -> type[InputAdapter]:
    """The adapter of the card's modality: its "task" ("<modality> classification", what the
    multi-class export stage writes), else the first adapter whose inputs it describes (the
    tabular card has no task)."""
    task = card.get("task")
    if isinstance(task, str) and task.split():
        modality = task.split()[0]
        if modality not in ADAPTERS:
            raise PipelineError(
                f"{source}: key 'task' = {task!r}: the server has input adapters for "
                f"{', '.join(ADAPTERS)} only"
            )
        return ADAPTERS[modality]
    for adapter in ADAPTERS.values():
        if adapter.recognises(card):
            return adapter
    inputs = card.get("inputs")
    names = sorted(inputs) if isinstance(inputs, dict) else inputs
    raise PipelineError(
        f"{source}: key 'inputs' = {names!r}: no 'task' and no input adapter recognises these "
        f"inputs (expected 'features', 'input_ids', 'images' or 'windows')"
    )
