"""Transparent pixels onto a declared background (data.image.clean.background), the one way
every stage (clean, profile, augment, training) and the export folder's scorer turn a user's
image into RGB. Imports only Pillow, so a user who copies the export folder's scorer copies
this file with it.
"""

from __future__ import annotations

from PIL import Image

WHITE = (255, 255, 255)  # data.image.clean.background's default


def on_background(image: Image.Image, background: tuple[int, ...] | list[int]) -> Image.Image:
    """`image` as RGB, its transparent pixels composited onto `background` (R, G, B): RGBA, LA
    and palette or grey images with a transparent entry (other modes are just converted).
    Dropping alpha instead makes most cut-outs and icons black squares (their transparent pixels are
    stored black), which then all look like duplicates of each other."""
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        base = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(base, rgba).convert("RGB")
    # a loaded copy even of an RGB image: the caller may close the file it came from
    return image.convert("RGB")
