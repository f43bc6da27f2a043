"""The modality-free ONNX variants core (pipelines.core.onnx_variants), for the text and the
image classifier alike: with quantization off only the FP32 graph is written; batch scoring
returns every row whole and in order, and scoring nothing gives (0, classes); the parity
check is 0 up to float noise for the FP32 graph; the MoE gates are found (the class head,
whose softmax is the graph's output, is not one); the variants' files are named as quantize
names them. Each modality's own quantization choices: tests/test_{text,image}_onnx_variants.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.core.onnx_variants import (
    FP32,
    INT8_DYNAMIC,
    INT8_STATIC,
    available_variants,
    batch_scorer,
    softmax_gates,
    variant_file,
)
from pipelines.modalities.image.onnx_variants import (
    export_image_variants,
    image_feed,
    image_parity,
)
from pipelines.modalities.text.onnx_variants import export_text_variants, text_feed, text_parity
from pipelines.models.image import build_image_model
from pipelines.models.text import TextClassifier
from pipelines.schema.compression import DynamicQuantConfig, QuantizeConfig, StaticQuantConfig
from pipelines.schema.model import ModelConfig

CLASSES, PAD, VOCAB, LENGTH, SIZE = 3, 0, 50, 12, 16
OFF = QuantizeConfig(
    dynamic=DynamicQuantConfig(enabled=False), static=StaticQuantConfig(enabled=False)
)


@dataclass(frozen=True)
class Case:
    """One modality's tiny MoE model, inputs for it, and its side of the core's hooks."""

    model: torch.nn.Module
    x: np.ndarray
    feed: Callable[[np.ndarray], dict[str, np.ndarray]]
    export: Callable[[Path, QuantizeConfig], dict[str, Path]]  # (folder, cfg) -> files
    parity: Callable[[Path], float]
    torch_probabilities: Callable[[np.ndarray], np.ndarray]


def text_case() -> Case:
    cfg = ModelConfig(
        name="moe_transformer", hidden_dim=16, ffn_dim=16, num_blocks=1, num_heads=2,
        seq_len=LENGTH, dropout=0.0,
    )  # fmt: skip
    torch.manual_seed(0)
    model = TextClassifier(VOCAB, CLASSES, PAD, cfg).eval()
    rng = np.random.default_rng(0)
    ids = rng.integers(1, VOCAB, size=(20, LENGTH))
    ids[np.arange(LENGTH)[None, :] >= rng.integers(1, LENGTH + 1, size=(20, 1))] = PAD

    def probabilities(batch: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(batch)
        with torch.no_grad():
            return torch.softmax(model(t, (t != PAD).long()), dim=-1).numpy()

    return Case(
        model=model,
        x=ids,
        feed=text_feed(PAD),
        export=lambda folder, q: export_text_variants(model, folder, ids, PAD, q),
        parity=lambda path: text_parity(model, path, PAD, [(1, 1), (3, LENGTH)], seed=0),
        torch_probabilities=probabilities,
    )


def image_case() -> Case:
    cfg = ModelConfig(
        name="image_cnn_moe", hidden_dim=16, ffn_dim=16, num_blocks=1, num_experts=4,
        dropout=0.0,
    )  # fmt: skip
    torch.manual_seed(0)
    model = build_image_model(CLASSES, SIZE, cfg).eval()
    images = np.random.default_rng(0).standard_normal((20, 3, SIZE, SIZE), dtype=np.float32)

    def probabilities(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.softmax(model(torch.from_numpy(batch)), dim=-1).numpy()

    return Case(
        model=model,
        x=images,
        feed=image_feed,
        export=lambda folder, q: export_image_variants(model, folder, images, SIZE, q, 17),
        parity=lambda path: image_parity(model, path, SIZE, (1, 3), seed=0),
        torch_probabilities=probabilities,
    )


@pytest.fixture(scope="module", params=["text", "image"])
def case(request: pytest.FixtureRequest) -> Case:
    return {"text": text_case, "image": image_case}[request.param]()


@pytest.fixture(scope="module")
def fp32_only(case: Case, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("fp32")
    return folder, case.export(folder, OFF)


def test_with_quantization_off_only_fp32_is_written(fp32_only) -> None:
    folder, paths = fp32_only
    assert paths == {FP32: folder / "fp32.onnx"}
    assert sorted(p.name for p in folder.iterdir()) == ["fp32.onnx"]


def test_the_fp32_graph_scores_as_pytorch(case: Case, fp32_only) -> None:
    _, paths = fp32_only
    assert case.parity(paths[FP32]) <= 1e-4


def test_batch_scoring_returns_every_row_whole_and_in_order(case: Case, fp32_only) -> None:
    """Batches of 7 leave a short last batch; scoring nothing gives (0, classes)."""
    _, paths = fp32_only
    score = batch_scorer(paths[FP32], 1, case.feed, batch_size=7)
    got = score(case.x)
    np.testing.assert_allclose(got, case.torch_probabilities(case.x), atol=1e-5)
    np.testing.assert_allclose(got, score(case.x, batch_size=len(case.x)), atol=1e-5)
    assert score(case.x[:0]).shape == (0, CLASSES)


def test_the_gates_are_found_and_the_class_head_is_not_one(fp32_only) -> None:
    _, paths = fp32_only
    for weighted_only in (False, True):
        gates = [g for g in softmax_gates(paths[FP32], weighted_only) if not g.endswith("_MatMul")]
        assert gates and not [g for g in gates if "head" in g], gates


def test_variant_files_are_named_as_quantize_names_them(tmp_path: Path) -> None:
    assert available_variants(tmp_path) == []
    for variant in (INT8_STATIC, FP32):
        variant_file(tmp_path, variant).write_bytes(b"")
    assert variant_file(tmp_path, INT8_DYNAMIC) == tmp_path / "model_int8_dynamic.onnx"
    assert available_variants(tmp_path) == [FP32, INT8_STATIC]
