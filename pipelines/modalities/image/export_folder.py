"""The image model's export folder: everything needed to score image files, and nothing from
this repository needed to do it.

    model.onnx        images (float32, batch x 3 x height x width, normalised) -> probabilities
    labels.json       {"labels": [...]}: the class of each probability column, in order
    model_card.json   the caller's card, the graph's inputs and outputs, and "preprocessing":
                      how a file becomes the model's input (image_preprocessing), as training
                      did it (clean's mode and size rules, then
                      pipelines.modalities.image.preprocess.normalise)
    examples/         <n>-<label>.png: test images to score

`score_image_files` is the reference scorer for such a folder and imports only onnxruntime,
numpy, Pillow, the standard library, pipelines.core.folder_scoring (itself only
onnxruntime, numpy and the standard library) and pipelines.modalities.image.transparency
(itself only Pillow), so what it does a user can do without
installing this project (README: the scoring snippet, which the tests run against it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from pipelines.core.folder_scoring import CARD, LABELS, MODEL, PROBABILITIES, labelled, open_folder
from pipelines.modalities.image.transparency import WHITE, on_background

FILES = (MODEL, LABELS, CARD)
# the exported graph's input name (pipelines.models.image), repeated so scoring imports
# nothing here
IMAGES = "images"
# what score_image_files implements; a card asking for anything else is refused, not guessed
SUPPORTED = {"color_mode": "RGB", "resize": "bilinear", "layout": "NCHW", "dtype": "float32"}
FITS = ("crop", "pad")  # data.image.clean.size.fit
SCORE_BATCH = 64


def image_preprocessing(
    size: int,
    mean: list[float],
    std: list[float],
    fit: str = "crop",
    pad_value: int = 0,
    background: tuple[int, ...] = WHITE,
) -> dict[str, Any]:
    """The card's "preprocessing": what the clean stage's mode and size rules
    (pipelines.modalities.image.analysis.to_mode, to_size with data.image.clean.size's `fit` and
    `pad_value`) and then normalise (with the train split's `mean` and `std`) made of every
    training image."""
    return {
        "height": size,
        "width": size,
        # on_background: transparent pixels composited onto `background`, then PIL
        # Image.convert("RGB"): grey replicated to 3 channels, palette expanded; EXIF
        # orientation is not applied
        "color_mode": "RGB",
        "background": [int(v) for v in background],
        # an image not already height x width: Pillow's ImageOps.fit (fit = crop: the shorter
        # side scaled to fit, the centre cut out) or ImageOps.pad (fit = pad: the longer side
        # scaled to fit, pad_value around), bilinear. Pillow's bilinear widens its filter when
        # shrinking (antialiased), so another library's "bilinear" gives other pixels
        "resize": "bilinear",
        "resize_library": "Pillow",
        "fit": fit,
        "keep_aspect_ratio": True,
        "crop": "centre" if fit == "crop" else None,
        "pad_value": pad_value,
        "channel_order": "RGB",
        "layout": "NCHW",
        "dtype": "float32",
        # uint8 pixel / scale puts it on [0, 1], where mean and std were measured
        "scale": 255.0,
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "formula": "x[c] = (pixel[c] / scale - mean[c]) / std[c], in float32",
    }


def write_image_export(
    folder: Path,
    onnx_path: Path,
    class_names: list[str],
    preprocessing: dict[str, Any],
    card: dict[str, Any],
) -> None:
    """Copy the graph into `folder` and describe it. Fails before writing anything when the
    graph's output width is not the number of class names (labels.json would name the wrong
    columns), or its input is not 3 x height x width of `preprocessing` (image_preprocessing)."""
    from pipelines.core.export_folder import checked_graph, write_folder
    from pipelines.errors import PipelineError

    graph = checked_graph(onnx_path, class_names, "image")
    chw = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim[1:]]
    expected = [3, preprocessing["height"], preprocessing["width"]]
    if chw != expected:
        raise PipelineError(
            f"{onnx_path}: the graph takes images of {chw} (channels, height, width) but the "
            f"preprocessing makes {expected}; expected the size the model was trained at"
        )
    if len(preprocessing["mean"]) != 3 or len(preprocessing["std"]) != 3:
        raise PipelineError(
            f"preprocessing mean {preprocessing['mean']}, std {preprocessing['std']}: "
            f"expected 3 values each (R, G, B)"
        )
    inputs = {
        IMAGES: {
            "dtype": "float32",
            "shape": ["batch", *expected],
            "description": "RGB images made as preprocessing says, channels first",
        },
    }
    card = {**card, "preprocessing": preprocessing}
    write_folder(folder, onnx_path, class_names=class_names, card=card, inputs=inputs)


def write_image_examples(folder: Path, images: list[Image.Image], labels: list[str]) -> list[Path]:
    """examples/<n>-<label>.png: image files to score (the scoring snippet reads them), their
    label in the name."""
    from pipelines.core.export_folder import EXAMPLES

    (folder / EXAMPLES).mkdir(parents=True, exist_ok=True)
    paths = []
    for number, (image, label) in enumerate(zip(images, labels, strict=True), start=1):
        path = folder / EXAMPLES / f"{number}-{label}.png"
        image.save(path, format="PNG")
        paths.append(path)
    return paths


def load_image_inputs(paths: list[Path | str], preprocessing: dict[str, Any]) -> np.ndarray:
    """Image files as the model's input, float32 (n, 3, height, width), exactly as training
    made them: clean's mode rule (on_background: transparency onto the card's background, then
    RGB) and size rule (ImageOps.fit or pad, bilinear,
    skipped when the size already matches), then normalise's float32 arithmetic, in its
    order."""
    for key, value in SUPPORTED.items():
        if preprocessing.get(key) != value:
            raise ValueError(
                f"preprocessing {key} = {preprocessing.get(key)!r}: this scorer implements "
                f"{value!r} only"
            )
    if preprocessing.get("fit") not in FITS:
        raise ValueError(
            f"preprocessing fit = {preprocessing.get('fit')!r}: this scorer implements "
            f"{' or '.join(FITS)}"
        )
    size = (preprocessing["width"], preprocessing["height"])
    background = tuple(preprocessing["background"])
    pixels = np.empty((len(paths), 3, size[1], size[0]), dtype=np.uint8)
    for i, path in enumerate(paths):
        with Image.open(path) as image:
            rgb = _fitted(on_background(image, background), size, preprocessing)
        pixels[i] = np.asarray(rgb).transpose(2, 0, 1)
    mean = np.asarray(preprocessing["mean"], dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(preprocessing["std"], dtype=np.float32).reshape(1, 3, 1, 1)
    scaled = pixels.astype(np.float32) / np.float32(preprocessing["scale"])
    return ((scaled - mean) / std).astype(np.float32)


def _fitted(rgb: Image.Image, size: tuple[int, int], preprocessing: dict[str, Any]) -> Image.Image:
    """The clean stage's size rule (pipelines.modalities.image.analysis.to_size), from the
    card alone."""
    if rgb.size == size:
        return rgb
    if preprocessing["fit"] == "crop":
        return ImageOps.fit(rgb, size, method=Image.Resampling.BILINEAR)
    fill = (int(preprocessing["pad_value"]),) * 3
    return ImageOps.pad(rgb, size, method=Image.Resampling.BILINEAR, color=fill)


def score_image_files(folder: Path, paths: list[Path | str]) -> list[dict[str, Any]]:
    """For each image file, {"label": the most probable class, "probabilities": {label: p}},
    from the export folder alone. A missing folder file fails with FileNotFoundError naming it
    (not a PipelineError: this function must not need the repository); an unreadable image
    fails with Pillow's error, which names the file."""
    folder = Path(folder)
    labels, model = open_folder(folder, FILES, FILES)
    preprocessing = json.loads((folder / CARD).read_text(encoding="utf-8"))["preprocessing"]
    results: list[dict[str, Any]] = []
    # batches bound the decoded images held at once; an FP32 graph's scores do not depend on
    # the batch (a dynamic-INT8 graph's do, slightly: it quantizes each batch on its range)
    for start in range(0, len(paths), SCORE_BATCH):
        images = load_image_inputs(list(paths[start : start + SCORE_BATCH]), preprocessing)
        (probabilities,) = model.run([PROBABILITIES], {IMAGES: images})
        results.extend(labelled(probabilities, labels))
    return results
