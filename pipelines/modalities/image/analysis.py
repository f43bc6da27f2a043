"""What the image rules and the profile read off one image: can it be decoded, what mode and
size it came in, the image the model would see (target mode and size), its brightness,
sharpness, channel moments, and its exact and perceptual hashes.

One function (`analyse`) serves both the cleaning rules and the profile, so what the profile
counts is what clean would remove with the same settings.

Perceptual hashes come from `imagehash` (pHash/dHash/aHash over Pillow, offline, maintained
since 2013, the reference implementation the dedup literature compares against) rather than
our own: pHash's details (32x32 grey resize, 2-D DCT, median over the low 8x8 block) decide
which pairs match, and a shared implementation means our thresholds mean what they mean
elsewhere.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imagehash
import numpy as np
from PIL import Image, ImageOps

from pipelines.modalities.image.config import ImageCleanConfig, ModeConfig, SizeConfig
from pipelines.modalities.image.transparency import WHITE, on_background

_ADDRESS = re.compile(r" ?<[^<>]* at 0x[0-9a-fA-F]+>")
_HASHES = {"phash": imagehash.phash, "dhash": imagehash.dhash, "ahash": imagehash.average_hash}


@dataclass
class Facts:
    """One image as the rules see it. `error` is set (and the rest left empty) when the image
    cannot be read; `image` is the normalised image (target mode and size)."""

    error: str = ""
    mode: str = ""  # as given
    width: int = 0  # as given
    height: int = 0
    image: Image.Image | None = None
    converted: bool = False
    resized: bool = False
    too_small: bool = False
    brightness: float = 0.0  # mean grey level, 0-255
    laplacian_var: float = 0.0  # variance of the 4-neighbour Laplacian of the grey image
    channel_mean: tuple[float, ...] = ()  # per channel of the normalised image, 0-1
    channel_sq: tuple[float, ...] = ()  # per channel mean of squares, 0-1 (for pooled stds)
    content_hash: str = ""  # of the normalised pixels, mode and size
    perceptual_hash: bytes = b""  # packed bits


def raw_bytes(value: Any) -> bytes | None:
    """The encoded bytes of an `Image(decode=False)` cell: {"bytes", "path"} (imagefolder
    leaves bytes empty and points at the file), raw bytes, or None when there is nothing."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    data = value.get("bytes")
    if data:
        return bytes(data)
    path = value.get("path")
    if path and Path(path).is_file():
        return Path(path).read_bytes()
    return None


def decode(data: bytes | None, verify: bool, max_pixels: int) -> tuple[Image.Image | None, str]:
    """(decoded image, "") or (None, why not). Decoding is forced here (load), so a truncated
    file fails now rather than inside a DataLoader worker mid-epoch. (Pillow's global
    ImageFile.LOAD_TRUNCATED_IMAGES would let a truncated file load padded with grey; verify
    still catches it, which is one reason verify is on by default.)"""
    if not data:
        return None, "no bytes"
    try:
        if verify:
            with Image.open(io.BytesIO(data)) as probe:
                probe.verify()  # structure and checksums; the object is unusable afterwards
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > max_pixels:
            return None, f"{image.width}x{image.height} pixels > max_pixels {max_pixels}"
        image.load()
    except Exception as error:  # Pillow raises OSError, SyntaxError, ValueError, ...
        # Pillow names the in-memory file by its address ("<_io.BytesIO object at 0x...>"),
        # which differs per run: the quarantine must be the same bytes for the same input
        message = _ADDRESS.sub("", str(error))
        return None, f"{type(error).__name__}: {message}"
    return image, ""


def to_mode(
    image: Image.Image, cfg: ModeConfig, background: tuple[int, ...] = WHITE
) -> tuple[Image.Image, bool]:
    """`image` in the target mode, and whether it was converted. Transparent pixels are
    composited onto `background` first, unless the target keeps alpha (RGBA)."""
    if image.mode == cfg.target and (cfg.target == "RGBA" or "transparency" not in image.info):
        return image, False
    if cfg.target == "RGBA":
        return image.convert("RGBA"), True
    return on_background(image, background).convert(cfg.target), True


def to_size(image: Image.Image, cfg: SizeConfig) -> tuple[Image.Image, bool]:
    target = (cfg.width, cfg.height)
    if not cfg.enabled or image.size == target:
        return image, False
    if cfg.fit == "crop":
        fitted = ImageOps.fit(image, target, method=Image.Resampling.BILINEAR)
    else:
        fill = (
            cfg.pad_value
            if image.mode in ("L", "I", "F")
            else (cfg.pad_value,) * len(image.getbands())
        )
        fitted = ImageOps.pad(image, target, method=Image.Resampling.BILINEAR, color=fill)
    return fitted, True


def laplacian_variance(grey: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian over the interior: the usual cheap sharpness
    score (low = few edges = blurry)."""
    g = grey.astype(np.float32)
    lap = g[1:-1, :-2] + g[1:-1, 2:] + g[:-2, 1:-1] + g[2:, 1:-1] - 4.0 * g[1:-1, 1:-1]
    return float(lap.var()) if lap.size else 0.0


def content_hash(image: Image.Image) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{image.mode}:{image.width}x{image.height}:".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def perceptual_hash(image: Image.Image, method: str, hash_size: int) -> bytes:
    bits = _HASHES[method](image, hash_size=hash_size).hash
    return np.packbits(np.asarray(bits, dtype=bool).ravel()).tobytes()


def analyse(data: bytes | None, cfg: ImageCleanConfig, hashes: bool = True) -> Facts:
    """Every figure the rules and the profile need about one encoded image. The mode policy
    does not change what is measured: a quarantined grey image is measured converted, so the
    profile describes the images the model would get under either policy."""
    image, error = decode(data, cfg.readable.verify, cfg.readable.max_pixels)
    if image is None:
        return Facts(error=error)
    facts = Facts(mode=image.mode, width=image.width, height=image.height)
    facts.too_small = cfg.size.enabled and min(image.size) < cfg.size.min_side
    normal, facts.converted = to_mode(image, cfg.mode, cfg.background_rgb)
    normal, facts.resized = to_size(normal, cfg.size)
    facts.image = normal
    pixels = np.asarray(normal, dtype=np.float32)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    # brightness, sharpness and the perceptual hash are of what the model sees: with alpha
    # kept (mode.target RGBA), composited as training composites it, not alpha dropped
    seen = on_background(normal, cfg.background_rgb) if normal.mode == "RGBA" else normal
    grey = np.asarray(seen.convert("L"), dtype=np.float32)
    facts.brightness = float(grey.mean())
    facts.laplacian_var = laplacian_variance(grey)
    scaled = pixels.reshape(-1, pixels.shape[2]) / 255.0
    facts.channel_mean = tuple(float(v) for v in scaled.mean(axis=0))
    facts.channel_sq = tuple(float(v) for v in np.square(scaled).mean(axis=0))
    if hashes:
        facts.content_hash = content_hash(normal)
        facts.perceptual_hash = perceptual_hash(seen, cfg.dedup.method, cfg.dedup.hash_size)
    return facts


def encode_png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)  # fast; PNG is lossless at any level
    return out.getvalue()
