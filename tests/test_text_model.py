"""The text Transformer (MoE and dense feed-forwards over token ids): one score per text that
padding does not change, batches cut to their longest text score the same, and the ONNX export
takes any batch and sequence length and matches PyTorch at several shapes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.models.families import matched_dense
from pipelines.models.moe import count_parameters
from pipelines.models.text import (
    ATTENTION_MASK,
    INPUT_IDS,
    TextClassifier,
    export_text_onnx,
    trim_to_longest,
)
from pipelines.runtime import session
from pipelines.schema.model import ModelConfig

VOCAB, CLASSES, PAD, MAX_LEN = 50, 5, 0, 48


def text_cfg(name: str) -> ModelConfig:
    return ModelConfig(
        name=name, hidden_dim=16, ffn_dim=24, num_blocks=2, num_heads=2, seq_len=MAX_LEN
    )


def text_model(name: str) -> TextClassifier:
    torch.manual_seed(0)
    return TextClassifier(VOCAB, CLASSES, PAD, text_cfg(name)).eval()


def batch(rows: int, length: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids with [CLS]-like id 1 first, real tokens, then padding (id 0, mask 0)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, length + 1, size=rows)
    lengths[0] = length  # one row fills the batch
    ids = rng.integers(2, VOCAB, size=(rows, length))
    mask = (np.arange(length)[None, :] < lengths[:, None]).astype(np.int64)
    ids = np.where(mask == 1, ids, PAD)
    ids[:, 0] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask)


def scores(model: TextClassifier, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(ids, mask)


@pytest.mark.parametrize("name", ["moe_transformer", "dense_transformer"])
def test_extra_padding_changes_no_text_score(name: str) -> None:
    model = text_model(name)
    ids, mask = batch(6, 10)
    padded_ids = torch.cat([ids, torch.full((6, 15), PAD)], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(6, 15, dtype=torch.long)], dim=1)
    out = scores(model, ids, mask)
    assert out.shape == (6, CLASSES)
    assert torch.allclose(scores(model, padded_ids, padded_mask), out, atol=1e-5)
    # and cutting a padded batch back to its longest text is the same thing
    assert torch.equal(trim_to_longest(padded_ids, padded_mask)[0], ids)


def test_the_dense_text_model_has_the_moe_model_active_parameters_per_token() -> None:
    moe = text_model("moe_transformer")
    dense = TextClassifier(VOCAB, CLASSES, PAD, matched_dense(text_cfg("moe_transformer")))
    moe_active = count_parameters(moe)["active_per_row"]
    routers = sum(p.numel() for n, p in moe.named_parameters() if "gate.wg" in n)
    # the same weights per token; each of the top-2 experts adds its own output bias, which
    # the one double-width dense feed-forward has once: (top_k - 1) x hidden per block
    output_biases = 2 * (2 - 1) * 16
    assert count_parameters(dense)["total"] == moe_active - routers - output_biases


@pytest.mark.parametrize("name", ["moe_transformer", "dense_transformer"])
def test_the_onnx_graph_takes_any_batch_and_length_and_matches_pytorch(
    name: str, tmp_path: Path
) -> None:
    model = text_model(name)
    path = tmp_path / "text.onnx"
    export_text_onnx(model, path, opset=17)
    ort = session(path, cpu_only=True)
    for rows, length in [(1, 1), (1, 7), (4, 19), (9, MAX_LEN)]:
        ids, mask = batch(rows, length, seed=rows)
        (probabilities,) = ort.run(None, {INPUT_IDS: ids.numpy(), ATTENTION_MASK: mask.numpy()})
        expected = torch.softmax(scores(model, ids, mask), dim=-1).numpy()
        assert probabilities.shape == (rows, CLASSES)
        np.testing.assert_allclose(probabilities, expected, atol=1e-5)
