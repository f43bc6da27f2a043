"""The image export folder: three files that score image files without this repository. The
reference scorer (score_image_files) makes exactly the input training made (decode_images, then
normalise) from the card alone, grey, RGBA and wrong-sized files included; a graph of another
size is refused; and the documented snippet (docs/tutorials/your-own-images.md), run as written,
gives the labels score_image_files gives. What every modality's folder does alike (scores equal
to the PyTorch model's in labels.json order, a missing file named, mismatched labels refused, a
scorer free of the repository): tests/test_export_folders.py."""

from __future__ import annotations

import io
import json
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from PIL import Image

from pipelines.errors import PipelineError
from pipelines.modalities.image.config import NO_IMAGE_DIRT, ImageSimulatorConfig
from pipelines.modalities.image.export_folder import (
    image_preprocessing,
    load_image_inputs,
    score_image_files,
    write_image_examples,
    write_image_export,
)
from pipelines.modalities.image.preprocess import channel_statistics, decode_images, normalise
from pipelines.modalities.image.simulator import simulate_images, write_image_folder
from pipelines.models.image import build_image_model, export_image_onnx
from pipelines.schema.model import ModelConfig
from tests.scoring_snippet import EXPORT_PLACES, doc_snippet, laid_out, run_snippet

SIZE = 32
PAGE = "docs/tutorials/your-own-images.md"
MARKER = "<!-- image-scoring-snippet -->"
# deliberately not sorted, so a folder that sorted them would be caught
NAMES = ["spot", "clean", "crack", "scratch"]
# the snippet the docs page shows: it finds the newest export folder and scores its examples
README_SNIPPET = """\
import glob, json, os, numpy as np, onnxruntime as ort, PIL.Image, PIL.ImageOps
folder = max(glob.glob("export") + glob.glob("outputs/runs/*/export"), key=os.path.getmtime)
paths = sorted(glob.glob(f"{folder}/examples/*.png"))
labels = json.load(open(f"{folder}/labels.json"))["labels"]
p = json.load(open(f"{folder}/model_card.json"))["preprocessing"]
size, mean, std = (p["width"], p["height"]), np.float32(p["mean"]), np.float32(p["std"])
bg, im = (*p["background"], 255), [PIL.Image.open(f).convert("RGBA") for f in paths]
im = [PIL.Image.alpha_composite(PIL.Image.new("RGBA", i.size, bg), i) for i in im]
rgb = [PIL.ImageOps.fit(i.convert("RGB"), size, PIL.Image.BILINEAR) for i in im]
x = ((np.stack(rgb) / np.float32(p["scale"]) - mean) / std).transpose(0, 3, 1, 2).copy()
model = ort.InferenceSession(f"{folder}/model.onnx", providers=["CPUExecutionProvider"])
print([labels[i] for i in model.run(None, {"images": x})[0].argmax(axis=1)])
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return export_image_folder(tmp_path_factory.mktemp("work"))


def export_image_folder(work: Path) -> dict:
    """A tiny untrained CNN MoE at 32 x 32, exported into work/export; 10 simulated surfaces
    written as PNG files at 40 x 48 (so scoring resizes, to a non-square source), plus a grey
    copy of the first and an RGBA one, partly transparent (so scoring converts and composites
    onto the card's background)."""
    sim = ImageSimulatorConfig(height=40, width=48, dirt=NO_IMAGE_DIRT)
    write_image_folder(simulate_images(10, seed=0, cfg=sim), work / "images")
    files = sorted((work / "images").rglob("*.png"))
    with Image.open(files[0]) as image:
        image.convert("L").save(work / "grey.png")
        _transparent(image).save(work / "rgba.png")
    files += [work / "grey.png", work / "rgba.png"]
    pixels = _as_cleaned(files)
    mean, std = channel_statistics(pixels)
    cfg = ModelConfig(
        name="image_cnn_moe", hidden_dim=16, ffn_dim=16, num_blocks=1, num_experts=4, dropout=0.0
    )
    torch.manual_seed(0)
    model = build_image_model(len(NAMES), SIZE, cfg).eval()
    export_image_onnx(model, work / "model.onnx", opset=17, size=SIZE)
    preprocessing = image_preprocessing(SIZE, mean, std)
    folder = work / "export"
    write_image_export(
        folder, work / "model.onnx", NAMES, preprocessing, {"model": "image_cnn_moe"}
    )
    return {
        "folder": folder,
        "names": NAMES,
        "model": model,
        "files": files,
        "expected_input": normalise(pixels, mean, std),
        "preprocessing": preprocessing,
    }


def _transparent(image: Image.Image) -> Image.Image:
    """RGBA: the left third fully transparent, the middle third half, the rest opaque."""
    rgba = image.convert("RGBA")
    alpha = np.full((rgba.height, rgba.width), 255, dtype=np.uint8)
    third = rgba.width // 3
    alpha[:, :third], alpha[:, third : 2 * third] = 0, 128
    rgba.putalpha(Image.fromarray(alpha, "L"))
    return rgba


def _as_cleaned(files: list[Path]) -> np.ndarray:
    """uint8 (n, 3, SIZE, SIZE): what the pipeline makes of each file, clean's mode and size
    rules (the defaults: RGB, centre crop) and then decode_images."""
    from pipelines.modalities.image.analysis import to_mode, to_size
    from pipelines.modalities.image.config import ModeConfig, SizeConfig

    cleaned = []
    for path in files:
        with Image.open(path) as image:
            rgb, _ = to_mode(image, ModeConfig())
            fitted, _ = to_size(rgb, SizeConfig(height=SIZE, width=SIZE))
            buffer = io.BytesIO()
            fitted.save(buffer, format="PNG")
            cleaned.append({"bytes": buffer.getvalue(), "path": None})
    ds = datasets.Dataset.from_dict({"image": cleaned}).cast_column("image", datasets.Image())
    return decode_images(ds, SIZE)


def _dataset(files: list[Path]) -> datasets.Dataset:
    """Files read as the pipeline reads an image folder: a datasets Image column."""
    ds = datasets.Dataset.from_dict({"image": [str(f) for f in files]})
    return ds.cast_column("image", datasets.Image())


def test_the_card_states_the_preprocessing_and_the_graphs_input(exported) -> None:
    """The folder's files: tests/test_export_folders.py."""
    folder = exported["folder"]
    assert json.loads((folder / "labels.json").read_text()) == {"labels": NAMES}
    card = json.loads((folder / "model_card.json").read_text())
    assert card["model"] == "image_cnn_moe"
    assert card["preprocessing"] == exported["preprocessing"]
    assert card["inputs"]["images"]["shape"] == ["batch", 3, SIZE, SIZE]
    assert card["outputs"]["probabilities"]["shape"] == ["batch", len(NAMES)]
    pre = card["preprocessing"]
    assert (pre["height"], pre["width"], pre["resize"], pre["fit"], pre["crop"]) == (
        SIZE,
        SIZE,
        "bilinear",
        "crop",
        "centre",
    )
    assert (pre["color_mode"], pre["channel_order"], pre["layout"]) == ("RGB", "RGB", "NCHW")
    assert pre["background"] == [255, 255, 255], "transparency composited onto white"
    assert (pre["dtype"], pre["scale"]) == ("float32", 255.0)
    assert len(pre["mean"]) == len(pre["std"]) == 3


def test_the_scorer_makes_exactly_the_input_training_made(exported) -> None:
    """clean's mode and size rules, decode_images and normalise, bit for bit, from the card
    alone: resized, grey and RGBA files included."""
    got = load_image_inputs(exported["files"], exported["preprocessing"])
    assert got.dtype == np.float32 and got.shape == (12, 3, SIZE, SIZE)
    np.testing.assert_array_equal(got, exported["expected_input"])


def test_a_card_asking_for_other_preprocessing_is_refused(exported) -> None:
    other = {**exported["preprocessing"], "resize": "bicubic"}
    with pytest.raises(ValueError, match="resize = 'bicubic': this scorer implements 'bilinear'"):
        load_image_inputs(exported["files"][:1], other)


def test_writing_fails_when_the_preprocessing_makes_another_size(exported, tmp_path: Path) -> None:
    model = exported["folder"] / "model.onnx"
    wrong = image_preprocessing(64, [0.5] * 3, [0.2] * 3)
    with pytest.raises(PipelineError, match=r"takes images of \[3, 32, 32\].*makes \[3, 64, 64\]"):
        write_image_export(tmp_path / "out", model, NAMES, wrong, {})
    assert not (tmp_path / "out").exists()


def check_snippet(snippet: str, exported: dict, where: Path) -> None:
    """The snippet, as written, from a root where each command leaves the export folder: it
    finds the folder and scores its examples (a resized RGB surface and a partly transparent
    RGBA one) as score_image_files does, from the same input to the bit."""
    for number, command in enumerate(EXPORT_PLACES):
        root = where / str(number)
        copy = laid_out(exported["folder"], root, command)
        with Image.open(exported["files"][1]) as rgb, Image.open(exported["files"][-1]) as rgba:
            examples = write_image_examples(copy, [rgb, rgba], ["scratch", "spot"])
        # twelve lines: two of them composite transparency onto the card's background
        ns = run_snippet(snippet, root, max_lines=12)
        assert ns["scored_folder"] == copy.resolve()
        files = [root / name for name in ns["paths"]]
        assert [f.resolve() for f in files] == [f.resolve() for f in examples]
        expected = score_image_files(copy, files)
        assert ns["stdout"].strip() == str([r["label"] for r in expected])
        # the same input to the bit, and so the same probabilities
        inputs = load_image_inputs(files, exported["preprocessing"])
        np.testing.assert_array_equal(ns["x"], inputs)
        (probabilities,) = ns["model"].run(None, {"images": ns["x"]})
        for row, result in zip(probabilities, expected, strict=True):
            np.testing.assert_allclose(row, list(result["probabilities"].values()), atol=1e-6)


def test_the_snippet_scores_image_files_as_score_image_files_does(exported, tmp_path: Path) -> None:
    check_snippet(README_SNIPPET, exported, tmp_path)


def test_the_readme_snippet_is_this_one_and_runs_as_written(exported, tmp_path: Path) -> None:
    snippet = doc_snippet(PAGE, MARKER, "image-scoring snippet (this file's README_SNIPPET)")
    check_snippet(snippet, exported, tmp_path)
