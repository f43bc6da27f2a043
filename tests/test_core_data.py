"""The data core the modalities share (pipelines/core/), run once per modality through each
modality's own entry points: the simulator skeleton's checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import datasets
import pytest

from pipelines.errors import PipelineError
from pipelines.modalities.image.config import NO_IMAGE_DIRT, ImageDirt, ImageSimulatorConfig
from pipelines.modalities.image.simulator import simulate_images
from pipelines.modalities.text.simulator import NO_DIRT, TicketDirt, simulate_tickets


def _tickets(n: int, seed: int, duplicates: float) -> datasets.Dataset:
    dirt = TicketDirt(**{**NO_DIRT.rates(), "exact_duplicate": duplicates})
    return simulate_tickets(n, seed, dirt, with_dirt_column=True)


def _images(n: int, seed: int, duplicates: float) -> datasets.Dataset:
    dirt = ImageDirt(**{**NO_IMAGE_DIRT.rates(), "exact_duplicate": duplicates})
    return simulate_images(n, seed, ImageSimulatorConfig(dirt=dirt), with_dirt_column=True)


# modality: (dirt class, its no-dirt rates, two kinds to overfill, the key in the error, simulate)
MODALITIES: dict[str, tuple[type, dict[str, float], tuple[str, str], str, Callable[..., Any]]] = {
    "text": (TicketDirt, NO_DIRT.rates(), ("email", "phone"), "TicketDirt", _tickets),
    "image": (
        ImageDirt,
        NO_IMAGE_DIRT.rates(),
        ("blurry", "rgba"),
        "data.image.simulator.dirt",
        _images,
    ),
}


@pytest.mark.parametrize("modality", MODALITIES)
def test_dirt_rates_may_not_sum_above_one(modality: str) -> None:
    cls, none, (a, b), key, _ = MODALITIES[modality]
    with pytest.raises(PipelineError, match=rf"^{key}: rates sum to 1\.2: expected <= 1"):
        cls(**{**none, a: 0.6, b: 0.6})


@pytest.mark.parametrize("modality", MODALITIES)
def test_n_rows_must_be_positive(modality: str) -> None:
    simulate = MODALITIES[modality][4]
    with pytest.raises(PipelineError, match=r"n_rows = 0: expected an integer >= 1"):
        simulate(0, 1, 0.0)
