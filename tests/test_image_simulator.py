"""Specification of the surface-defect image simulator (pipelines/modalities/image/simulator.py)."""

from __future__ import annotations

import io
import math
from collections import Counter
from pathlib import Path

import datasets
import imagehash
import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError

from pipelines.errors import PipelineError
from pipelines.modalities.image.analysis import laplacian_variance
from pipelines.modalities.image.config import NO_IMAGE_DIRT, ImageDirt, ImageSimulatorConfig
from pipelines.modalities.image.simulator import WRONG_SIZES, simulate_images, write_image_folder

N = 1000
# Ten kinds at 4% each: enough of every kind in 1,000 images to check its rate and its look.
DIRTY = ImageSimulatorConfig(dirt=ImageDirt(**dict.fromkeys(NO_IMAGE_DIRT.rates(), 0.04)))


@pytest.fixture(scope="module")
def images() -> datasets.Dataset:
    ds = simulate_images(N, seed=17, cfg=DIRTY, with_dirt_column=True)
    return ds.cast_column("image", datasets.Image(decode=False))


def _open(cell: dict) -> Image.Image:
    image = Image.open(io.BytesIO(cell["bytes"]))
    image.load()
    return image


def _by_dirt(images: datasets.Dataset, kind: str) -> list[dict]:
    dirt = images["dirt"][:]
    return [cell for cell, d in zip(images["image"][:], dirt, strict=True) if d == kind]


def _grey(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"), dtype=np.float32)


def test_columns_are_image_id_image_and_label() -> None:
    ds = simulate_images(20, seed=1)
    assert ds.column_names == ["image_id", "image", "label"]
    assert isinstance(ds.features["image"], datasets.Image)
    assert ds.features["label"].dtype == "string"
    assert ds["image_id"][:] == list(range(20))
    first = ds[0]["image"]
    assert first.size == (64, 64) and first.mode == "RGB"


def test_same_seed_same_images_whatever_num_proc() -> None:
    a = simulate_images(120, seed=4, cfg=DIRTY, with_dirt_column=True)
    b = simulate_images(120, seed=4, cfg=DIRTY, with_dirt_column=True, num_proc=2)
    undecoded = datasets.Image(decode=False)
    a, b = (ds.cast_column("image", undecoded).to_dict() for ds in (a, b))
    assert a == b
    c = simulate_images(120, seed=5).cast_column("image", undecoded)
    assert c["image"][:] != a["image"]


def test_classes_follow_their_shares_and_crack_is_rare(images) -> None:
    counts = Counter(images["label"][:])
    assert set(counts) == {"clean", "scratch", "spot", "crack"}
    for label, share in ImageSimulatorConfig().class_shares.items():
        tolerance = 4 * math.sqrt(share * (1 - share) / N)
        assert abs(counts[label] / N - share) <= tolerance, (label, counts[label] / N, share)
    assert 0.02 < counts["crack"] / N < 0.08


def test_each_dirt_rate_is_roughly_the_configured_one(images) -> None:
    counts = Counter(images["dirt"][:])
    for kind, rate in DIRTY.dirt.rates().items():
        tolerance = 4 * math.sqrt(rate * (1 - rate) / N)
        assert abs(counts[kind] / N - rate) <= tolerance, (kind, counts[kind] / N, rate)


def test_without_dirt_every_image_is_a_sharp_well_exposed_64x64_rgb_png() -> None:
    ds = simulate_images(200, seed=3, cfg=ImageSimulatorConfig(dirt=NO_IMAGE_DIRT))
    cells = ds.cast_column("image", datasets.Image(decode=False))["image"][:]
    for cell in cells:
        assert cell["bytes"][:8] == b"\x89PNG\r\n\x1a\n"
        image = _open(cell)
        assert image.size == (64, 64) and image.mode == "RGB"
        grey = _grey(image)
        assert 50 < grey.mean() < 200
        assert laplacian_variance(grey) > 100


def test_unreadable_dirt_does_not_decode(images) -> None:
    for cell in _by_dirt(images, "corrupt"):
        with pytest.raises((OSError, SyntaxError)):
            with Image.open(io.BytesIO(cell["bytes"])) as image:
                image.verify()
            _open(cell)  # some cut files pass verify's chunk walk and fail to decode
    for cell in _by_dirt(images, "not_image"):
        with pytest.raises(UnidentifiedImageError):
            _open(cell)


def test_mode_and_size_dirt_look_like_their_names(images) -> None:
    assert {_open(c).mode for c in _by_dirt(images, "grayscale")} == {"L"}
    assert {_open(c).mode for c in _by_dirt(images, "rgba")} == {"RGBA"}
    sizes = {_open(c).size for c in _by_dirt(images, "wrong_size")}
    assert sizes <= {(w, h) for h, w in WRONG_SIZES} and len(sizes) > 1


def test_blur_and_exposure_dirt_look_like_their_names(images) -> None:
    assert all(laplacian_variance(_grey(_open(c))) < 20 for c in _by_dirt(images, "blurry"))
    assert all(_grey(_open(c)).mean() > 230 for c in _by_dirt(images, "overexposed"))
    assert all(_grey(_open(c)).mean() < 25 for c in _by_dirt(images, "underexposed"))


def test_duplicates_repeat_an_earlier_clean_image(images) -> None:
    cells, dirt, labels = images["image"][:], images["dirt"][:], images["label"][:]
    clean = [i for i, kind in enumerate(dirt) if kind == ""]
    first_with_pixels: dict[bytes, int] = {}
    for i in clean:
        first_with_pixels.setdefault(_open(cells[i]).tobytes(), i)
    hashes = np.stack([imagehash.phash(_open(cells[i])).hash.ravel() for i in clean])
    for i, kind in enumerate(dirt):
        if kind not in ("exact_duplicate", "near_duplicate"):
            continue
        image = _open(cells[i])
        source = first_with_pixels.get(image.tobytes())
        if kind == "exact_duplicate":
            assert source is not None and source < i and labels[source] == labels[i]
        else:
            assert source is None  # other pixels...
            distance = (hashes != imagehash.phash(image).hash.ravel()).sum(axis=1)
            close = [clean[j] for j in np.flatnonzero(distance <= 8)]  # ...the same picture
            assert close and close[0] < i and labels[close[0]] == labels[i]


def test_size_and_class_shares_come_from_config() -> None:
    cfg = ImageSimulatorConfig(
        height=32, width=48, class_shares={"clean": 0.5, "crack": 0.5}, dirt=NO_IMAGE_DIRT
    )
    ds = simulate_images(100, seed=6, cfg=cfg)
    assert {image.size for image in ds["image"][:]} == {(48, 32)}
    assert set(ds["label"][:]) == {"clean", "crack"}


def test_image_folder_round_trip_through_the_imagefolder_builder(tmp_path: Path) -> None:
    ds = simulate_images(40, seed=2, cfg=ImageSimulatorConfig(dirt=NO_IMAGE_DIRT))
    folder = write_image_folder(ds, tmp_path / "images")
    assert sorted(p.name for p in folder.iterdir()) == sorted(set(ds["label"][:]))
    loaded = datasets.load_dataset(
        "imagefolder", data_dir=str(folder), split="train", cache_dir=str(tmp_path / "cache")
    )
    names = loaded.features["label"].names
    assert len(loaded) == 40
    by_pixels = Counter(
        (image.tobytes(), names[label])
        for image, label in zip(loaded["image"][:], loaded["label"][:], strict=True)
    )
    assert by_pixels == Counter(
        (image.tobytes(), label)
        for image, label in zip(ds["image"][:], ds["label"][:], strict=True)
    )


@pytest.mark.parametrize("name", list(NO_IMAGE_DIRT.rates()))
def test_a_dirt_rate_outside_0_1_names_its_key(name) -> None:
    with pytest.raises(
        PipelineError, match=rf"data\.image\.simulator\.dirt\.{name} = 1\.5: expected a number in"
    ):
        ImageDirt(**{**NO_IMAGE_DIRT.rates(), name: 1.5})


def test_simulator_config_errors_name_their_key() -> None:
    with pytest.raises(PipelineError, match=r"class_shares\.dent = 0\.1: expected a class among"):
        ImageSimulatorConfig(class_shares={"clean": 0.9, "dent": 0.1})
    with pytest.raises(PipelineError, match=r"data\.image\.simulator\.height = 8: expected an"):
        ImageSimulatorConfig(height=8)
    with pytest.raises(PipelineError, match=r"data\.image\.simulator\.dirt\.dust: unknown key"):
        ImageSimulatorConfig(dirt={"dust": 0.1})
