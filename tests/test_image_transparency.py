"""Images with transparency (icons, cut-outs: a dark glyph on a transparent background) are
composited onto data.image.clean.background before they become RGB, in clean, profile,
augment, training and the export folder's scorer (pipelines/modalities/image/transparency.py).
Dropping alpha instead turns every such icon into a black square: the duplicate gate then
fails and nothing can be learned."""

from __future__ import annotations

import io

import datasets
import numpy as np
import pytest
from PIL import Image, ImageDraw

from pipelines.errors import PipelineError
from pipelines.modalities.image.analysis import analyse, raw_bytes
from pipelines.modalities.image.augment import augment_image, image_operations
from pipelines.modalities.image.baseline import fit_baselines, texture_features
from pipelines.modalities.image.config import (
    ImageAugmentConfig,
    ImageCleanConfig,
    ModeConfig,
    SizeConfig,
)
from pipelines.modalities.image.preprocess import decode_images
from pipelines.modalities.image.rules import clean_image_splits, undecoded
from pipelines.modalities.image.transparency import on_background

SIZE = 32
GLYPHS = ("ring", "square", "cross", "triangle")
CLEAN = ImageCleanConfig(size=SizeConfig(height=SIZE, width=SIZE, min_side=8))


def glyph(kind: str, rng: np.random.Generator) -> Image.Image:
    """A black glyph, anywhere and of any size, on a fully transparent background whose pixels
    are stored black, as icon editors usually store them."""
    image = Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    half = int(rng.integers(7, 14))
    cx, cy = (int(v) for v in rng.integers(half + 1, SIZE - half - 1, size=2))
    ink = (0, 0, 0, 255)
    width = int(rng.integers(2, 5))
    box = (cx - half, cy - half, cx + half, cy + half)
    if kind == "ring":
        draw.ellipse(box, outline=ink, width=width)
    elif kind == "square":
        draw.rectangle(box, fill=ink)
    elif kind == "cross":
        draw.line((cx - half, cy - half, cx + half, cy + half), fill=ink, width=width)
        draw.line((cx - half, cy + half, cx + half, cy - half), fill=ink, width=width)
    else:
        draw.polygon([(cx, cy - half), (cx - half, cy + half), (cx + half, cy + half)], fill=ink)
    return image


def stored(image: Image.Image, i: int) -> bytes:
    """PNG bytes in one of the three ways transparency comes: RGBA, LA (grey with alpha) and a
    palette with a transparent entry."""
    if i % 3 == 1:
        image = image.convert("LA")
    elif i % 3 == 2:
        image = image.convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
        transparent = image.getpixel((0, 0))  # the corners are background in every glyph
        image.info["transparency"] = transparent
    out = io.BytesIO()
    image.save(out, format="PNG", **({"transparency": image.info["transparency"]}
                                     if "transparency" in image.info else {}))  # fmt: skip
    return out.getvalue()


def glyph_split(n: int, seed: int) -> datasets.Dataset:
    rng = np.random.default_rng(seed)
    labels = [GLYPHS[i % len(GLYPHS)] for i in range(n)]
    cells = [{"bytes": stored(glyph(kind, rng), i), "path": None} for i, kind in enumerate(labels)]
    features = datasets.Features(
        {"image_id": datasets.Value("int64"), "image": datasets.Image(),
         "label": datasets.Value("string")}
    )  # fmt: skip
    return datasets.Dataset.from_dict(
        {"image_id": list(range(seed * 10_000, seed * 10_000 + n)), "image": cells,
         "label": labels},
        features=features,
    )  # fmt: skip


@pytest.fixture(scope="module")
def splits() -> dict[str, datasets.Dataset]:
    return {"train": glyph_split(240, 1), "val": glyph_split(60, 2), "test": glyph_split(120, 3)}


# --- the one function ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparent_pixels_take_the_background_and_opaque_ones_keep_their_colour(
    mode: str,
) -> None:
    image = Image.new("RGBA", (4, 1), (0, 0, 0, 0))
    image.putpixel((1, 0), (20, 20, 20, 255))
    image.putpixel((2, 0), (0, 0, 0, 128))
    if mode == "LA":
        image = image.convert("LA")
    elif mode == "P":
        image = image.convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
        image.info["transparency"] = image.getpixel((0, 0))
    rgb = np.asarray(on_background(image, (255, 255, 255)))
    assert rgb.shape == (1, 4, 3)
    assert rgb[0, 0].tolist() == [255, 255, 255], "transparent: the background"
    assert rgb[0, 1].tolist() == [20, 20, 20], "opaque: its own colour"
    if mode != "P":  # a palette entry is either transparent or not
        assert 120 <= rgb[0, 2, 0] <= 135, "half transparent black on white: mid grey"
    on_black = np.asarray(on_background(image, (0, 0, 0)))
    assert on_black[0, 0].tolist() == [0, 0, 0]


def test_an_opaque_image_is_unchanged_to_the_bit() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    for image in (Image.fromarray(pixels, "RGB"), Image.fromarray(pixels, "RGB").convert("RGBA")):
        np.testing.assert_array_equal(np.asarray(on_background(image, (9, 9, 9))), pixels)


def test_the_result_outlives_the_file_it_came_from(tmp_path) -> None:
    """The export folder's scorer closes each file before resizing (or not, when the size
    already matches) and reading the pixels."""
    pixels = np.random.default_rng(1).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(pixels, "RGB").save(tmp_path / "opaque.png")
    with Image.open(tmp_path / "opaque.png") as image:
        rgb = on_background(image, (255, 255, 255))
    np.testing.assert_array_equal(np.asarray(rgb), pixels)


def test_the_background_key_takes_names_and_hex_colours_and_names_a_bad_value() -> None:
    assert ImageCleanConfig().background_rgb == (255, 255, 255)
    assert ImageCleanConfig(background="black").background_rgb == (0, 0, 0)
    assert ImageCleanConfig(background="#102a3B").background_rgb == (16, 42, 59)
    for bad in ("transparent", "#12345", 255):
        with pytest.raises(PipelineError, match=r"data\.image\.clean\.background.*#rrggbb"):
            ImageCleanConfig(background=bad)  # type: ignore[arg-type]


# --- the stages --------------------------------------------------------------------------------


def test_transparent_glyphs_of_different_classes_are_not_duplicates(splits) -> None:
    train = undecoded(splits["train"], "image")
    labels = np.array(train["label"][:])
    facts = [analyse(raw_bytes(cell), CLEAN) for cell in train["image"][:]]
    # alpha dropped (the old conversion), every glyph here is the same black square
    dropped = {
        Image.open(io.BytesIO(raw_bytes(cell))).convert("RGB").tobytes()
        for cell in train["image"][:]
    }
    assert len(dropped) == 1, "the test data is the case that failed"
    # composited: no two images of different classes are exact duplicates (a glyph drawn
    # twice with the same position and size is, rightly) ...
    classes_by_hash: dict[str, set[str]] = {}
    for f, label in zip(facts, labels, strict=True):
        classes_by_hash.setdefault(f.content_hash, set()).add(str(label))
    assert max(len(c) for c in classes_by_hash.values()) == 1
    assert len(classes_by_hash) > 0.8 * len(facts)
    # ... and no two of different classes are perceptual duplicates (clean's rule: hashes
    # within data.image.clean.dedup.max_distance bits)
    bits = np.array([np.unpackbits(np.frombuffer(f.perceptual_hash, np.uint8)) for f in facts])
    distance = (bits[:, None, :] != bits[None, :, :]).sum(axis=-1)
    across = labels[:, None] != labels[None, :]
    assert distance[across].min() > CLEAN.dedup.max_distance
    # what clean keeps is RGB on a white background, the glyph dark
    kept, quarantine, report = clean_image_splits(splits, CLEAN)
    assert report["train"]["converted"] == len(splits["train"])
    assert len(kept["train"]) > len(splits["train"]) / 2
    first = np.asarray(kept["train"][0]["image"])
    assert first.shape == (SIZE, SIZE, 3)
    assert first[0, 0].tolist() == [255, 255, 255] and first.min() < 60


def test_with_alpha_kept_through_clean_the_glyphs_are_still_told_apart(splits) -> None:
    """mode.target RGBA keeps alpha in the cleaned files; the perceptual hash is still taken
    of the composited image (what training will see), so no cross-class duplicates appear."""
    keep_alpha = ImageCleanConfig(
        size=SizeConfig(height=SIZE, width=SIZE, min_side=8), mode=ModeConfig(target="RGBA")
    )
    train = undecoded(splits["train"], "image")
    labels = np.array(train["label"][:])
    facts = [analyse(raw_bytes(cell), keep_alpha) for cell in train["image"][:]]
    assert {f.image.mode for f in facts} == {"RGBA"}
    bits = np.array([np.unpackbits(np.frombuffer(f.perceptual_hash, np.uint8)) for f in facts])
    distance = (bits[:, None, :] != bits[None, :, :]).sum(axis=-1)
    assert distance[labels[:, None] != labels[None, :]].min() > keep_alpha.dedup.max_distance
    # alpha dropped, every one of these would measure 0 (black glyph, black background)
    assert min(f.brightness for f in facts) > 50, "measured on white, not on black"


def test_a_model_learns_transparent_glyphs_well_above_chance(splits) -> None:
    """The image modality's logistic-regression baseline (pooled HOG and grey-level features,
    pipelines/modalities/image/baseline.py) on what clean keeps, decoded as training decodes
    it: a black square per image would leave it at chance."""
    kept, _, _ = clean_image_splits(splits, CLEAN)
    index = {name: i for i, name in enumerate(GLYPHS)}
    features, labels = {}, {}
    for name in ("train", "test"):
        features[name] = texture_features(decode_images(kept[name], SIZE))
        labels[name] = np.array([index[v] for v in kept[name]["label"][:]])
    model = fit_baselines(features["train"], labels["train"], seed=0)["hog_logistic_regression"]
    accuracy = float((model.predict(features["test"]) == labels["test"]).mean())
    chance = 1 / len(GLYPHS)
    assert accuracy >= chance + 0.35, f"test accuracy {accuracy:.2f}; chance is {chance:.2f}"


def test_augmented_copies_of_a_transparent_glyph_keep_the_background() -> None:
    image = glyph("square", np.random.default_rng(5))
    policy = ImageAugmentConfig(rotation_degrees=0.0, crop_scale=[1.0, 1.0])
    png = augment_image(image, image_operations(policy, (SIZE, SIZE)), seed=1)
    with Image.open(io.BytesIO(png)) as copy:
        pixels = np.asarray(copy.convert("RGB"))
    corners = pixels[[0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners > 200).all(), corners
