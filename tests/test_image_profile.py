"""The image profile: figures that match what was planted (unreadable files, sizes and modes,
duplicates, leaks, blurry and badly exposed images), channel statistics, label drift, gates
that name their key, and the PNG/grid/HTML report beside the JSON."""

from __future__ import annotations

import io
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

from pipelines.errors import PipelineError
from pipelines.modalities.image.config import (
    NO_IMAGE_DIRT,
    ImageCleanConfig,
    ImageDirt,
    ImageGatesConfig,
    ImageSimulatorConfig,
)
from pipelines.modalities.image.profile import (
    check_image_gates,
    image_profile_html,
    image_profile_png,
    profile_image_splits,
    sample_grid_png,
)
from pipelines.modalities.image.simulator import render_surface, simulate_images

RULES = ImageCleanConfig()


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _surface(i: int, size: tuple[int, int] = (64, 64)) -> Image.Image:
    return render_surface(np.random.default_rng((7, i)), "clean", size)


def _split(images: list, labels: list[str]) -> datasets.Dataset:
    cells = [{"bytes": i if isinstance(i, bytes) else _png(i), "path": None} for i in images]
    features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("string")})
    return datasets.Dataset.from_dict({"image": cells, "label": labels}, features=features)


def hand_made() -> dict[str, datasets.Dataset]:
    train = _split(
        [_surface(0), _surface(1), _surface(1), _surface(2, (96, 128)).convert("L"), b"junk"],
        ["scratch", "clean", "clean", "spot", "clean"],
    )  # an exact duplicate, a grey 128x96 image, an unreadable file
    val = _split([_surface(0), _surface(3)], ["scratch", "clean"])  # a leak
    test = _split([_surface(4), _surface(5)], ["clean", "clean"])
    return {"train": train, "val": val, "test": test}


def test_the_profile_counts_what_was_planted() -> None:
    report = profile_image_splits(hand_made(), RULES)
    train, val, test = (report["splits"][n] for n in ("train", "val", "test"))
    assert train["rows"] == 5 and train["unreadable"] == 1 and train["unreadable_rate"] == 0.2
    assert train["sizes"] == {"64x64": 3, "128x96": 1}
    assert train["modes"] == {"RGB": 3, "L": 1}
    assert train["exact_duplicate_rate"] == 0.2 and train["leak_rate"] == 0.0
    assert val["leak_rate"] == 0.5 and val["exact_leak_rate"] == 0.5 and test["leak_rate"] == 0.0
    assert train["labels"] == {"clean": 3, "scratch": 1, "spot": 1}
    assert len(train["channel_mean"]) == len(train["channel_std"]) == 3  # target mode RGB
    assert report["thresholds"]["max_distance"] == RULES.dedup.max_distance


def test_channel_statistics_are_pooled_over_every_pixel() -> None:
    red = Image.new("RGB", (64, 64), (255, 0, 0))
    half = np.zeros((64, 64, 3), np.uint8)
    half[:, :32] = 255  # every channel half 0, half 1
    split = _split([red, Image.fromarray(half)], ["a", "b"])
    stats = profile_image_splits({"train": split}, RULES)["splits"]["train"]
    assert stats["channel_mean"] == pytest.approx([0.75, 0.25, 0.25])
    # red channel: 3/4 ones; green and blue: 1/4 ones -> std sqrt(p(1-p)) = 0.433 each
    assert stats["channel_std"] == pytest.approx([0.4330127, 0.4330127, 0.4330127])


def test_blurry_exposure_and_duplicate_rates_match_the_simulated_dirt() -> None:
    dirt = ImageDirt(**{**NO_IMAGE_DIRT.rates(), "blurry": 0.08, "overexposed": 0.04,
                        "underexposed": 0.04, "near_duplicate": 0.08})  # fmt: skip
    ds = simulate_images(300, seed=9, cfg=ImageSimulatorConfig(dirt=dirt), with_dirt_column=True)
    report = profile_image_splits({"train": ds}, RULES)["splits"]["train"]
    kinds = ds["dirt"][:]
    assert report["blurry_rate"] == kinds.count("blurry") / 300
    assert (
        report["exposure_rate"] == (kinds.count("overexposed") + kinds.count("underexposed")) / 300
    )
    assert report["near_duplicate_rate"] == kinds.count("near_duplicate") / 300
    assert report["unreadable_rate"] == 0.0 and report["exact_duplicate_rate"] == 0.0


def test_label_drift_shows_when_test_holds_one_class_only() -> None:
    ds = simulate_images(400, seed=2, cfg=ImageSimulatorConfig(dirt=NO_IMAGE_DIRT))
    clean_only = ds.select([i for i, label in enumerate(ds["label"][:]) if label == "clean"])
    steady = profile_image_splits(
        {"train": ds.select(range(300)), "test": ds.select(range(300, 400))}, RULES
    )
    drifted = profile_image_splits({"train": ds.select(range(300)), "test": clean_only}, RULES)
    assert steady["drift"]["label_psi"] < 0.1
    assert drifted["drift"]["label_psi"] > 0.5
    assert steady["drift"]["brightness_psi"] < 0.25


def test_gates_name_the_split_the_figure_and_the_key(tmp_path: Path) -> None:
    splits = hand_made()
    report = profile_image_splits(splits, RULES)
    failures = check_image_gates(report, ImageGatesConfig(min_rows=3, min_class_rows=2))
    key = "data.image.profile.gates"
    assert f"val: 2 rows < {key}.min_rows = 3" in failures
    assert f"train: unreadable rate 0.2000 > {key}.max_unreadable_rate = 0.05" in failures
    leak = "leak rate (duplicates of train rows)"
    assert f"val: {leak} 0.5000 > {key}.max_leak_rate = 0.05" in failures
    assert f"train: label 'scratch' has 1 rows < {key}.min_class_rows = 2" in failures
    loose = ImageGatesConfig(
        min_rows=0, min_class_rows=0, max_unreadable_rate=1, max_duplicate_rate=1,
        max_leak_rate=1, max_blurry_rate=1, max_exposure_rate=1, max_label_psi=100,
        max_brightness_psi=100,
    )  # fmt: skip
    assert check_image_gates(report, loose) == []

    png, grid, page = tmp_path / "profile.png", tmp_path / "grid.png", tmp_path / "profile.html"
    image_profile_png(report, png)
    sample_grid_png(splits["train"], grid, per_class=4)  # the unreadable file is skipped
    image_profile_html(report, png, page, failures, grid_png=grid)
    assert png.read_bytes()[:4] == grid.read_bytes()[:4] == b"\x89PNG"
    text = page.read_text()
    assert "Failed gates" in text and "max_leak_rate" in text and text.count("<img") == 2


@pytest.mark.parametrize("name", ["max_leak_rate", "max_blurry_rate", "max_label_psi", "min_rows"])
def test_a_gate_of_the_wrong_type_names_its_key(name) -> None:
    with pytest.raises(PipelineError, match=rf"data\.image\.profile\.gates\.{name} = -1: expected"):
        ImageGatesConfig(**{name: -1})
