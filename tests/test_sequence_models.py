"""Sequence models over a customer's recent transactions: how histories are built, ONNX
export with a dynamic batch (MoE capacity must follow the batch), and the matched dense
baselines."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from pipelines.config import validate
from pipelines.data.schema import LABEL
from pipelines.data.sequences import customer_sequences
from pipelines.errors import PipelineError
from pipelines.io import write_frame
from pipelines.models.build import build_model
from pipelines.models.families import matched_dense
from pipelines.models.moe import count_parameters
from pipelines.onnx_export import export_onnx, parity_check
from pipelines.schema.model import ModelConfig
from tests.tiny_models import small_model_config

N_FEATURES, SEQ_LEN = 5, 6


def write_split(path: Path, rows: list[tuple[str, str, float]]) -> Path:
    frame = pd.DataFrame(rows, columns=["customer_id", "tx_datetime", "amount"])
    frame["tx_datetime"] = pd.to_datetime(frame["tx_datetime"])
    frame["hour"] = frame["tx_datetime"].dt.hour.astype(float)
    frame[LABEL] = 0.0
    write_frame(path, frame)
    return path


def test_a_history_holds_the_customers_earlier_transactions_from_any_split(tmp_path) -> None:
    splits = {
        "train": write_split(
            tmp_path / "train.arrow",
            [
                ("a", "2026-01-01 10:00", 1.0),
                ("b", "2026-01-01 11:00", 50.0),
                ("a", "2026-01-02 10:00", 2.0),
            ],
        ),
        "val": write_split(tmp_path / "val.arrow", [("a", "2026-01-03 09:00", 3.0)]),
        "test": write_split(
            tmp_path / "test.arrow",
            [("b", "2026-01-04 12:00", 60.0), ("a", "2026-01-04 13:00", 4.0)],
        ),
    }
    out = customer_sequences(splits, ["amount", "hour"], "customer_id", "tx_datetime", 3)
    x_val, _ = out["val"]
    assert x_val.shape == (1, 3, 3)
    # a's two train transactions, then the scored one; all real
    np.testing.assert_array_equal(x_val[0, :, 0], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(x_val[0, :, -1], [1.0, 1.0, 1.0])
    x_test, _ = out["test"]
    # rows stay in the split's order: b first, then a (whose oldest no longer fits)
    np.testing.assert_array_equal(x_test[0, :, 0], [0.0, 50.0, 60.0])
    np.testing.assert_array_equal(x_test[0, :, -1], [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(x_test[1, :, 0], [2.0, 3.0, 4.0])
    # the first transaction of a customer has no history: padding only before it
    x_train, _ = out["train"]
    np.testing.assert_array_equal(x_train[0, :, -1], [0.0, 0.0, 1.0])
    # never a later transaction in a history
    assert 3.0 not in x_train[:, :, 0] and 4.0 not in x_val[:, :, 0][:, :2]


def sequences(rows: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, SEQ_LEN, N_FEATURES + 1)).astype(np.float32)
    lengths = rng.integers(1, SEQ_LEN + 1, size=rows)
    present = (np.arange(SEQ_LEN)[None, :] >= SEQ_LEN - lengths[:, None]).astype(np.float32)
    x[..., -1] = present
    x[..., :-1] *= present[..., None]
    return x


def sequence_model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = small_model_config(name, hidden_dim=16, ffn_dim=32, seq_len=SEQ_LEN, dropout=0.0)
    return build_model(N_FEATURES, cfg, [0.0] * N_FEATURES, [1.0] * N_FEATURES).eval()


@pytest.mark.parametrize("name", ["moe_transformer", "dense_transformer", "bilstm_attention"])
def test_sequence_models_export_with_a_dynamic_batch_and_match_pytorch(
    name: str, tmp_path: Path
) -> None:
    model = sequence_model(name)
    path = tmp_path / "model.onnx"
    export_onnx(model, (SEQ_LEN, N_FEATURES + 1), path, opset=17)
    # traced at batch 8: other sizes prove the MoE capacity was not frozen into the graph
    diffs = parity_check(model, path, sequences(300), [1, 7, 64, 300], atol=1e-4)
    assert set(diffs) == {"1", "7", "64", "300"}
    assert max(diffs.values()) <= 1e-4


def test_padding_does_not_change_a_prediction() -> None:
    model = sequence_model("moe_transformer")
    x = sequences(4)
    noisy = x.copy()
    noisy[..., :-1] += (1 - noisy[..., -1:]) * 7.0  # garbage only where rows are padding
    with torch.no_grad():
        clean_out = model(torch.from_numpy(x))
        noisy_out = model(torch.from_numpy(noisy))
    torch.testing.assert_close(clean_out, noisy_out)


@pytest.mark.parametrize("moe_name", ["moe_mlp", "moe_transformer"])
def test_the_matched_dense_model_has_the_moe_models_active_parameters(moe_name: str) -> None:
    cfg = ModelConfig(name=moe_name, seq_len=SEQ_LEN)
    moe = build_model(N_FEATURES, cfg, [0.0] * N_FEATURES, [1.0] * N_FEATURES)
    dense_cfg = matched_dense(cfg)
    dense = build_model(N_FEATURES, dense_cfg, [0.0] * N_FEATURES, [1.0] * N_FEATURES)
    active = count_parameters(moe)["active_per_row"]
    dense_total = count_parameters(dense)["total"]
    # equal but for the router (hidden x experts per block) and the top_k experts' output
    # biases where the dense block has one
    router = cfg.num_blocks * cfg.hidden_dim * cfg.num_experts
    extra_biases = cfg.num_blocks * (cfg.top_k - 1) * cfg.hidden_dim
    assert active - dense_total == router + extra_biases
    assert abs(active - dense_total) / active < 0.01
    assert dense_cfg.ffn_dim == cfg.ffn_dim * cfg.top_k
    with pytest.raises(ValueError):
        matched_dense(dense_cfg)


def test_a_sequence_model_without_an_entity_key_fails_naming_the_key() -> None:
    cfg = {"model": dataclasses.asdict(ModelConfig(name="bilstm_attention", top_k=1))}
    with pytest.raises(PipelineError, match="data.schema.sequence_key"):
        validate(cfg, source="test")


@pytest.mark.parametrize("name", ["moe_transformer", "dense_transformer", "bilstm_attention"])
def test_a_model_cast_to_bf16_takes_float32_batches_and_returns_float32_logits(name: str) -> None:
    """DeepSpeed's bf16 mode casts the whole module while batches stay float32 (a dtype error
    on an H200 before this was handled)."""
    model = sequence_model(name).bfloat16()
    x = torch.from_numpy(sequences(8))
    logits = model(x)
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()
