"""What every modality's export folder does alike (pipelines.core.export_folder,
pipelines.core.folder_scoring), for text and for images: a folder missing a file fails
naming it, its scores are the PyTorch model's in labels.json order, a graph whose outputs do
not match the class names is refused before anything is written, and the scorer imports
nothing from this repository but the stand-alone pipelines.core.folder_scoring, which itself
imports only onnxruntime, numpy and the standard library."""

from __future__ import annotations

import ast
import importlib
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

import pipelines.core.folder_scoring as folder_scoring
import pipelines.modalities.image.export_folder as image_folder
import pipelines.modalities.text.export_folder as text_folder
from pipelines.errors import PipelineError
from pipelines.modalities.text.tokenizer import encode
from tests.test_image_export_folder import export_image_folder
from tests.test_text_export_folder import export_text_folder

STDLIB = set(sys.stdlib_module_names) | {"__future__"}
# texts the text folder scores: padding, an empty one, one past max_length
TEXTS = [
    "I lost my card on the train, please block it",
    "The website is not loading since yesterday",
    "I want a refund for the double charge",
    "",
    "ÉMOJI 🙂 and a very long ticket " * 20,
]


@dataclass(frozen=True)
class Case:
    build: Callable[[Path], dict]  # work folder -> {"folder", "names", ...}
    score: Callable[[Path, list], list]  # (folder, inputs) -> one result per input
    inputs: Callable[[dict], list]  # what to score from the built case
    expected: Callable[[dict], np.ndarray]  # the PyTorch model's probabilities for them
    atol: float  # how close the folder's scores are to PyTorch's (FP32 graph)
    files: tuple[str, ...]  # every file the folder holds
    needed: tuple[str, ...]  # the files scoring reads
    rewrite: Callable[[dict, Path, list[str]], None]  # write the folder again, other names
    unit: str  # one input, as the writer's message names it
    module: object  # the scorer's module
    scorers: tuple[str, ...]  # its functions a user copies
    packages: frozenset[str]  # the third-party packages it may import besides the core's
    helpers: frozenset[str] = frozenset()  # modules of this repository a user copies with it


def pytorch_probabilities(model: torch.nn.Module, *inputs: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(model(*inputs), dim=-1).numpy()


CASES = {
    "text": Case(
        build=export_text_folder,
        score=text_folder.score_texts,
        inputs=lambda built: TEXTS,
        expected=lambda built: pytorch_probabilities(
            built["model"], *map(torch.from_numpy, encode(built["tokenizer"], TEXTS))
        ),
        atol=1e-5,
        files=("model.onnx", "tokenizer.json", "labels.json", "model_card.json"),
        needed=("model.onnx", "tokenizer.json", "labels.json"),
        rewrite=lambda built, out, names: text_folder.write_text_export(
            out, built["folder"] / "model.onnx", built["folder"] / "tokenizer.json", names, {}
        ),
        unit="text",
        module=text_folder,
        scorers=("score_texts",),
        packages=frozenset({"tokenizers"}),
    ),
    "image": Case(
        build=export_image_folder,
        score=image_folder.score_image_files,
        inputs=lambda built: [str(f) for f in built["files"]],
        expected=lambda built: pytorch_probabilities(
            built["model"], torch.from_numpy(built["expected_input"])
        ),
        atol=1e-4,
        files=("model.onnx", "labels.json", "model_card.json"),
        needed=("model.onnx", "labels.json", "model_card.json"),
        rewrite=lambda built, out, names: image_folder.write_image_export(
            out, built["folder"] / "model.onnx", names, built["preprocessing"], {}
        ),
        unit="image",
        module=image_folder,
        scorers=("score_image_files", "load_image_inputs", "_fitted"),
        packages=frozenset({"PIL"}),
        helpers=frozenset({"pipelines.modalities.image.transparency"}),
    ),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    case = CASES[request.param]
    return case, case.build(tmp_path_factory.mktemp(request.param))


def test_a_folder_missing_a_file_fails_naming_it(built, tmp_path: Path) -> None:
    """FileNotFoundError, not the repo's PipelineError: scoring must not need the repo."""
    case, exported = built
    assert sorted(p.name for p in exported["folder"].iterdir()) == sorted(case.files)
    for missing in case.needed:
        folder = tmp_path / missing / "export"
        shutil.copytree(exported["folder"], folder)
        (folder / missing).unlink()
        with pytest.raises(FileNotFoundError, match=re.escape(str(folder / missing))) as error:
            case.score(folder, case.inputs(exported)[:1])
        assert f"an export folder holds {', '.join(case.files)}" in str(error.value)


def test_scores_are_the_pytorch_models_in_labels_json_order(built) -> None:
    case, exported = built
    results = case.score(exported["folder"], case.inputs(exported))
    expected = case.expected(exported)
    names = exported["names"]
    assert [r["label"] for r in results] == [names[i] for i in expected.argmax(axis=1)]
    for result, row in zip(results, expected, strict=True):
        assert list(result["probabilities"]) == names
        np.testing.assert_allclose(list(result["probabilities"].values()), row, atol=case.atol)
        assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert case.score(exported["folder"], []) == []


def test_writing_fails_when_the_labels_do_not_match_the_graphs_outputs(
    built, tmp_path: Path
) -> None:
    case, exported = built
    model = exported["folder"] / "model.onnx"
    width = len(exported["names"])
    pattern = re.escape(str(model)) + f".*{width} probabilities per {case.unit} but 2 class names"
    with pytest.raises(PipelineError, match=pattern):
        case.rewrite(exported, tmp_path / "out", ["a", "b"])
    assert not (tmp_path / "out").exists()


def top_level_imports(tree: ast.Module) -> set[str]:
    return {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in tree.body
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }


def test_the_shared_scoring_core_imports_only_onnxruntime_numpy_and_the_standard_library():
    tree = ast.parse(Path(folder_scoring.__file__).read_text(encoding="utf-8"))
    top = {name.split(".")[0] for name in top_level_imports(tree)}
    assert top <= STDLIB | {"numpy", "onnxruntime"}, top - STDLIB


@pytest.mark.parametrize("modality", sorted(CASES))
def test_the_scorer_imports_nothing_else_from_this_repository(modality: str) -> None:
    """A user copies the scorer (and pipelines/core/folder_scoring.py) without this project:
    the module's imports (its writer's lazy onnx and pipelines imports aside) are these, and
    the functions a user copies import nothing themselves."""
    case = CASES[modality]
    tree = ast.parse(Path(case.module.__file__).read_text(encoding="utf-8"))
    names = top_level_imports(tree)
    assert "pipelines.core.folder_scoring" in names
    others = {n.split(".")[0] for n in names - {"pipelines.core.folder_scoring"} - case.helpers}
    assert others <= STDLIB | {"numpy", "onnxruntime"} | case.packages, others - STDLIB
    for helper in case.helpers:  # copied along: they import no more than the scorer may
        module = importlib.import_module(helper)
        helper_tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
        imported = {n.split(".")[0] for n in top_level_imports(helper_tree)}
        assert imported <= STDLIB | case.packages, imported - STDLIB
    for func in case.scorers:
        (node,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == func]
        assert not [n for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom)]
