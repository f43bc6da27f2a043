"""Images: {"images": ["<base64 PNG/JPEG>", ...]} or a multipart/form-data upload of image
files, made into the model's input by the export folder's own code
(pipelines.modalities.image.export_folder.load_image_inputs, what its scorer runs: the card's
mode, size, fit, mean and std), so the server and the folder's snippet cannot preprocess an
image differently. Each image is checked before it is decoded: its pixel count (a
decompression bomb is refused from its header) and its mode."""

from __future__ import annotations

import base64
import binascii
import io
import json
import warnings
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from PIL import Image, UnidentifiedImageError

from pipelines.core.folder_scoring import CARD
from pipelines.errors import PipelineError
from pipelines.modalities.image.drift_features import FEATURES, image_drift_rows
from pipelines.modalities.image.export_folder import IMAGES, load_image_inputs
from pipelines.serve.config import ServeConfig
from pipelines.serve.inputs.base import InputAdapter, Parsed
from pipelines.serve.requests import (
    BadRequest,
    check_count,
    check_strings,
    listed,
    parse_json,
)


class ImageInput(InputAdapter):
    modality = "image"
    example = '{"images": ["<base64 PNG or JPEG>"]} or a multipart/form-data upload'
    input_key = IMAGES
    parse_off_loop = True

    def __init__(self, preprocessing: dict[str, Any], max_pixels: int, modes: list[str]) -> None:
        self.preprocessing, self.max_pixels, self.modes = preprocessing, max_pixels, modes
        self.shape = (3, int(preprocessing["height"]), int(preprocessing["width"]))
        self._signature = json.dumps(
            [self.modality, preprocessing, max_pixels, modes], sort_keys=True, default=str
        )

    @classmethod
    def open(
        cls, folder: Path, card: dict[str, Any], session: ort.InferenceSession, cfg: ServeConfig
    ) -> ImageInput:
        preprocessing = card.get("preprocessing")
        if not isinstance(preprocessing, dict):
            raise PipelineError(
                f"{folder / CARD}: key 'preprocessing': missing; an image export's card "
                "states how a file becomes the model's input"
            )
        adapter = cls(preprocessing, cfg.image.max_pixels, list(cfg.image.modes))
        try:  # a card asking for preprocessing the folder's code does not implement: refuse now
            load_image_inputs([_png(Image.new("RGB", (8, 8)))], preprocessing)
        except (ValueError, KeyError) as err:
            raise PipelineError(f"{folder / CARD}: key 'preprocessing': {err}") from None
        return adapter

    def parse(self, body: bytes, content_type: str, max_rows: int) -> Parsed:
        if content_type.split(";")[0].strip().lower() == "multipart/form-data":
            files = _form_files(body, content_type)
        else:
            files = self._json_images(
                listed(parse_json(body), "images", self.example, "image", max_rows)
            )
        check_count(len(files), "images", "image", max_rows)  # an upload of no file
        decoded = [self._pixels(name, data) for name, data in files]
        x = np.concatenate([pixels for pixels, _ in decoded])
        drift = image_drift_rows([size for _, size in decoded], x, self.preprocessing)
        return Parsed(x, len(x), drift=drift)

    @property
    def drift_features(self) -> list[str]:
        return FEATURES

    def _json_images(self, images: list[Any]) -> list[tuple[str, bytes]]:
        files = []
        for i, item in enumerate(check_strings(images, "images", "a base64 string")):
            try:
                files.append((f"images[{i}]", base64.b64decode(item, validate=True)))
            except (binascii.Error, ValueError):
                raise BadRequest(
                    422, "not_base64", f"field 'images[{i}]': not valid base64"
                ) from None
        return files

    def _pixels(self, name: str, data: bytes) -> tuple[np.ndarray, tuple[int, int]]:
        """One image as the model's (1, 3, height, width) input and the file's (width,
        height), or a BadRequest naming it."""
        try:
            with warnings.catch_warnings():
                # Pillow warns (and past twice its limit raises) on huge images; the limit
                # here is serve.image.max_pixels, checked from the header before decoding
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data)) as image:
                    width, height, mode = image.width, image.height, image.mode
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError):
            raise BadRequest(
                422, "not_an_image", f"field '{name}': not a decodable image"
            ) from None
        if width * height > self.max_pixels:
            raise BadRequest(
                413,
                "image_too_large",
                f"field '{name}': {width}x{height} = {width * height} pixels > "
                f"serve.image.max_pixels = {self.max_pixels}",
            )
        if mode not in self.modes:
            raise BadRequest(
                422,
                "wrong_mode",
                f"field '{name}': image mode {mode!r}; expected one of serve.image.modes "
                f"({', '.join(self.modes)})",
            )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                return load_image_inputs([io.BytesIO(data)], self.preprocessing), (width, height)
        except (OSError, ValueError, SyntaxError) as err:  # truncated or corrupt pixel data
            reason = " ".join(str(err).split())[:120]
            raise BadRequest(
                422, "not_an_image", f"field '{name}': not a decodable image ({reason})"
            ) from None

    def collate(self, parts: list[Any]) -> dict[str, np.ndarray]:
        return {IMAGES: parts[0] if len(parts) == 1 else np.concatenate(parts)}

    def warm_input(self, rows: int) -> Any:
        return np.zeros((rows, *self.shape), dtype=np.float32)


def _png(image: Image.Image) -> io.BytesIO:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    buffer.seek(0)
    return buffer


def _form_files(body: bytes, content_type: str) -> list[tuple[str, bytes]]:
    """The files of a multipart/form-data body, named by their form field (the standard
    library's MIME parser: the format is MIME's multipart)."""
    if "boundary=" not in content_type:
        raise BadRequest(
            400, "bad_header", "header 'content-type': multipart/form-data without a boundary"
        )
    message = BytesParser(policy=HTTP).parsebytes(
        b"content-type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise BadRequest(400, "bad_multipart", "body: not a multipart/form-data body")
    files = []
    for i, part in enumerate(message.iter_parts()):
        field = part.get_param("name", header="content-disposition") or f"part {i}"
        if part.get_filename() is None and part.get_content_maintype() == "text":
            continue  # a plain form field, not an upload
        payload = part.get_payload(decode=True)
        files.append((str(field), payload if isinstance(payload, bytes) else b""))
    return files
