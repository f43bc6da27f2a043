"""Seeded surface-defect image simulator: textured surfaces labelled clean, scratch, spot or
crack, plus the dirt the image cleaning rules (pipelines/modalities/image/rules.py) must catch.

A surface is multi-octave value noise plus an oriented grain (brushed metal, wood, fabric)
over a random base colour, with a little pixel noise: real sensors are never smooth, and it
keeps clean images well above the blur rule's sharpness threshold. Defects are drawn on top:
scratch = 1-3 thin straight lines, spot = 1-4 dark blobs, crack = a jagged random walk with a
branch or two. Crack is the rare class (~5%), as defect data sets are.

Each image gets at most one kind of dirt (the rates of ImageDirt), made to trip exactly one
rule: corrupt or non-image bytes (readable), grey or RGBA mode (mode), another size (size),
exact copies and re-lit copies of an earlier clean image (dedup), heavy blur (blur), washed-out or
black frames (exposure).

Determinism without a driver loop: labels, dirt kinds and duplicate sources are drawn with one
numpy generator; each image is rendered by its own generator seeded by (seed, image_id) inside
a batched Dataset.map, so num_proc does not change a pixel. A duplicate re-renders its
source's clean image from the source's own seed.
"""

from __future__ import annotations

import io
import os
from functools import cache, partial
from pathlib import Path
from typing import Any, Unpack

import datasets
import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from pipelines.core.simulator import DUPLICATE_KINDS, RowSimulation, SimulationOptions
from pipelines.modalities.image.config import ImageSimulatorConfig

WRONG_SIZES = ((96, 96), (128, 128), (80, 112), (112, 80))  # larger only: resizing keeps detail
_NOT_IMAGES = (
    b"<!DOCTYPE html><html><head><title>404 Not Found</title></head><body>Not Found</body></html>",
    b"image_id,label,camera\n1042,scratch,line-3\n",
    b'{"error": "camera offline", "code": 503}',
    b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <</Type /Catalog>> endobj\n",
)
FEATURES = datasets.Features(
    {
        "image_id": datasets.Value("int64"),
        "image": datasets.Image(),
        "label": datasets.Value("string"),
        "dirt": datasets.Value("string"),
    }
)


IMAGES = RowSimulation(
    "simulate_images",
    id_column="image_id",
    content_column="image",
    features=datasets.Features(
        {
            "image_id": FEATURES["image_id"],
            "label": FEATURES["label"],
            "dirt": FEATURES["dirt"],
            "image": FEATURES["image"],
        }  # fmt: skip
    ),
    batch_size=200,
)


def simulate_images(
    n_rows: int,
    seed: int,
    cfg: ImageSimulatorConfig | None = None,
    **options: Unpack[SimulationOptions],
) -> datasets.Dataset:
    """Columns image_id (int64), image (datasets.Image, PNG bytes), label (str); with
    with_dirt_column, `dirt`: the injected kind ("" for a clean image), ground truth for
    scoring the rules. Dirty cells may not decode: read them with Image(decode=False)."""
    cfg = ImageSimulatorConfig() if cfg is None else cfg
    render = partial(_image_cell, seed=seed, size=(cfg.height, cfg.width))
    return IMAGES.simulate(n_rows, seed, cfg.class_shares, cfg.dirt.rates(), render, **options)


def _image_cell(
    image_id: int,
    label: str,
    kind: str,
    source: int,
    source_label: str,
    *,
    seed: int,
    size: tuple[int, int],
) -> tuple[dict[str, Any], str]:
    data, label = write_image(seed, image_id, label, kind, source, source_label, size)
    return {"bytes": data, "path": None}, label


def _render_rng(seed: int, image_id: int) -> np.random.Generator:
    return np.random.default_rng((seed, image_id, 0))


def _dirt_rng(seed: int, image_id: int) -> np.random.Generator:
    return np.random.default_rng((seed, image_id, 1))


def write_image(
    seed: int,
    image_id: int,
    label: str,
    kind: str,
    source: int,
    source_label: str,
    size: tuple[int, int],
) -> tuple[bytes, str]:
    """(encoded bytes, label) of one image; a duplicate takes its source's label."""
    rng = _dirt_rng(seed, image_id)
    if kind in DUPLICATE_KINDS:
        original = render_surface(_render_rng(seed, source), source_label, size)
        if kind == "exact_duplicate":  # same pixels; half re-encoded (other bytes, same image)
            return _png(original, compress_level=int(rng.choice([1, 9]))), source_label
        return _png(_near_copy(original, rng)), source_label
    if kind == "not_image":
        return _NOT_IMAGES[int(rng.integers(len(_NOT_IMAGES)))], label
    if kind == "wrong_size":
        size = WRONG_SIZES[int(rng.integers(len(WRONG_SIZES)))]
    image = render_surface(_render_rng(seed, image_id), label, size)
    if kind == "corrupt":
        return _corrupt(_png(image), rng), label
    if kind in _PIXEL_DIRT:
        image = _PIXEL_DIRT[kind](image, rng)
    return _png(image), label


def _png(image: Image.Image, compress_level: int = 1) -> bytes:
    """PNG at zlib level 1: faster than level 6 for ~10% larger files (lossless either way)."""
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=compress_level)
    return out.getvalue()


# --- surfaces and defects --------------------------------------------------------------------


def _value_noise(rng: np.random.Generator, size: tuple[int, int], cells: int) -> np.ndarray:
    """A cells x cells grid of uniform values, bicubically upsampled: smooth blotches."""
    height, width = size
    grid = rng.random((cells + 1, cells + 1)).astype(np.float32)
    return np.asarray(Image.fromarray(grid).resize((width, height), Image.Resampling.BICUBIC))


@cache
def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return y, x


def render_surface(rng: np.random.Generator, label: str, size: tuple[int, int]) -> Image.Image:
    """A textured RGB surface of (height, width) with the label's defect drawn on it."""
    height, width = size
    texture = (
        0.5 * _value_noise(rng, size, 3)
        + 0.3 * _value_noise(rng, size, 7)
        + 0.2 * _value_noise(rng, size, 15)
    )
    angle, period, phase = rng.uniform(0, np.pi), rng.uniform(3.0, 9.0), rng.uniform(0, 2 * np.pi)
    y, x = _grid(height, width)
    grain = np.sin((x * np.cos(angle) + y * np.sin(angle)) * 2 * np.pi / period + phase)
    shade = 0.7 + 0.5 * texture + rng.uniform(0.03, 0.1) * grain
    base = rng.uniform(60, 185, size=3)
    shade += rng.standard_normal(size, dtype=np.float32) * np.float32(5.0 / base.mean())
    pixels = base.astype(np.float32)[None, None, :] * shade[:, :, None]  # + ~5 levels of noise
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = _DEFECTS.get(label)
    if draw is not None:
        draw(ImageDraw.Draw(image), rng, size, base)
    return image


def _colour(base: np.ndarray, factor: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(v * factor, 0, 255)) for v in base)  # type: ignore[return-value]


def _scratch(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size, base) -> None:
    height, width = size
    for _ in range(int(rng.integers(1, 4))):
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        angle = rng.uniform(0, np.pi)
        length = rng.uniform(0.5, 1.0) * max(size)
        x1, y1 = x0 + length * np.cos(angle), y0 + length * np.sin(angle)
        bright = rng.random() < 0.6  # scratches mostly catch the light
        draw.line([(x0, y0), (x1, y1)], fill=_colour(base, 1.7 if bright else 0.45), width=1)


def _spot(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size, base) -> None:
    height, width = size
    scale = min(size) / 64
    for _ in range(int(rng.integers(1, 5))):
        cx, cy = rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height
        rx, ry = rng.uniform(2, 6, size=2) * scale
        fill = _colour(base, rng.uniform(0.3, 0.5))
        draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=fill)


def _crack(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size, base) -> None:
    height, width = size
    scale = min(size) / 64
    colour = _colour(base, 0.25)
    start = (rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height)
    heading = rng.uniform(0, 2 * np.pi)
    trunk = _walk(rng, start, heading, int(rng.integers(10, 20)), scale)
    draw.line(trunk, fill=colour, width=int(rng.integers(1, 3)))
    for _ in range(int(rng.integers(1, 3))):  # branches leave the trunk at an angle
        at = trunk[int(rng.integers(2, len(trunk)))]
        turn = rng.choice([-1, 1]) * rng.uniform(0.5, 1.2)
        branch = _walk(rng, at, heading + turn, int(rng.integers(4, 10)), scale)
        draw.line(branch, fill=colour, width=1)


def _walk(rng, start, heading: float, steps: int, scale: float) -> list[tuple[float, float]]:
    """A jagged path: each step 2-4 px, the heading jittered by up to ~0.7 rad a step."""
    headings = heading + np.cumsum(rng.uniform(-0.7, 0.7, size=steps))
    lengths = rng.uniform(2, 4, size=steps) * scale
    xs = start[0] + np.cumsum(lengths * np.cos(headings))
    ys = start[1] + np.cumsum(lengths * np.sin(headings))
    return [start, *zip(xs.tolist(), ys.tolist(), strict=True)]


_DEFECTS = {"scratch": _scratch, "spot": _spot, "crack": _crack}


# --- dirt --------------------------------------------------------------------------------------


def _corrupt(data: bytes, rng: np.random.Generator) -> bytes:
    """Half cut short (an interrupted upload), half with a few bytes flipped mid-file (a bad
    disk sector): the second decodes with garbage and only a checksum check catches it."""
    if rng.random() < 0.5:
        return data[: int(len(data) * rng.uniform(0.3, 0.9))]
    flipped = bytearray(data)
    for at in rng.integers(60, len(data) - 20, size=4):
        flipped[at] ^= 0xFF
    return bytes(flipped)


def _near_copy(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The same frame captured again: re-lit (brightness +-3-8 levels, contrast +-8%) with fresh
    sensor noise. Not shifted: on these noise-like textures a 1 px shift already moves the
    64-bit pHash by 4-12 bits (median 4, measured on 300 surfaces) while unrelated surfaces
    come as close as 12 bits, so no threshold would tell a shifted copy from another part;
    pHash is not shift-invariant, and textured surfaces are its worst case."""
    pixels = np.asarray(image, dtype=np.float32)
    mean = pixels.mean()
    contrast = rng.uniform(0.92, 1.08)
    brightness = rng.choice([-1, 1]) * rng.uniform(3, 8)
    noise = 2.0 * rng.standard_normal(pixels.shape[:2], dtype=np.float32)[:, :, None]
    pixels = (pixels - mean) * contrast + mean + brightness + noise
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))


def _blurry(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(2.5, 4.0))))


def _overexposed(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float32)
    return Image.fromarray((255 - (255 - pixels) * rng.uniform(0.04, 0.1)).astype(np.uint8))


def _underexposed(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float32)
    return Image.fromarray((pixels * rng.uniform(0.04, 0.1)).astype(np.uint8))


_PIXEL_DIRT = {
    "grayscale": lambda image, rng: image.convert("L"),
    "rgba": lambda image, rng: image.convert("RGBA"),
    "blurry": _blurry,
    "overexposed": _overexposed,
    "underexposed": _underexposed,
}


# --- an image folder on disk --------------------------------------------------------------------


def write_image_folder(ds: datasets.Dataset, folder: Path, label_column: str = "label") -> Path:
    """One sub-folder per label, one file per image (its bytes as they are, dirt included,
    named <image_id or row>.png): the layout the `imagefolder` builder reads, so loading
    from disk can be tested offline."""
    folder = Path(folder)
    raw = ds.cast_column("image", datasets.Image(decode=False))
    ids = raw["image_id"][:] if "image_id" in raw.column_names else range(len(raw))
    for image_id, cell, label in zip(ids, raw["image"][:], raw[label_column][:], strict=True):
        target = folder / str(label)
        target.mkdir(parents=True, exist_ok=True)
        tmp = target / f".{image_id:06d}.png.tmp"
        tmp.write_bytes(cell["bytes"] or b"")
        os.replace(tmp, target / f"{image_id:06d}.png")
    return folder
