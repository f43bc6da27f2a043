"""The PatchTST-like patch Transformer for series (model=ts_patch_moe, its dense twin
ts_patch_dense): selected from YAML through `_target_`, built from the same attention and MoE
blocks as the image patch model, windows in -> class logits out, it learns, and it exports to
ONNX with a dynamic batch axis that ONNX Runtime scores as PyTorch does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.compose import compose_params
from pipelines.config import load_params
from pipelines.errors import PipelineError
from pipelines.models.families import is_moe, matched_dense
from pipelines.models.timeseries import (
    PatchClassifier,
    build_series_model,
    export_series_onnx,
    patch_length,
)
from tests.modality_runs import SMALL_SERIES

CHANNELS, LENGTH, CLASSES = 3, 64, 2
SMALL = ["model.hidden_dim=16", "model.num_heads=2", "model.seq_len=8", "model.num_blocks=1",
         "model.dropout=0.0"]  # fmt: skip


def composed(tmp: Path, model: str) -> Path:
    params = tmp / f"{model}.yaml"
    compose_params(params, ["+experiment=machine_monitoring", f"model={model}"])
    return params


@pytest.fixture(scope="module")
def params(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("patch")
    return {name: composed(tmp, name) for name in ("ts_patch_moe", "ts_patch_dense")}


@pytest.fixture(scope="module")
def configs(params: dict[str, Path]) -> dict:
    """Both models shrunk (the dense twin to top_k x the expert width, as the YAML has it)."""
    return {
        name: load_params(path, [*SMALL_SERIES, *SMALL, f"model.ffn_dim={16 * (1 + is_dense)}"])
        for is_dense, (name, path) in enumerate(params.items())
    }


def toy_windows(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Class 1 vibrates at 8 cycles per window, class 0 at 2: a pattern inside patches."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, CLASSES, (n,), generator=generator)
    t = torch.arange(LENGTH) / LENGTH
    cycles = torch.where(labels == 1, 8.0, 2.0).reshape(-1, 1, 1)
    phase = torch.rand(n, CHANNELS, 1, generator=generator) * 6.28
    x = torch.sin(6.28 * cycles * t + phase) + 0.3 * torch.randn(n, CHANNELS, LENGTH,
                                                                  generator=generator)  # fmt: skip
    return x.float(), labels


def test_the_yaml_selects_the_patch_model_and_its_dense_twin(params: dict, configs: dict) -> None:
    moe, dense = (load_params(params[n]).model for n in ("ts_patch_moe", "ts_patch_dense"))
    assert moe._target_ == dense._target_ == "pipelines.models.timeseries.PatchClassifier"
    assert is_moe(moe) and not is_moe(dense)
    twin = matched_dense(moe)
    # the same width active per patch: one feed-forward of top_k x the expert width
    assert (twin.name, twin.ffn_dim, twin.hidden_dim) == (dense.name, dense.ffn_dim,
                                                          dense.hidden_dim)  # fmt: skip
    model = build_series_model(CLASSES, CHANNELS, LENGTH, configs["ts_patch_moe"].model)
    assert isinstance(model, PatchClassifier)
    assert patch_length(LENGTH, moe) == 8


@pytest.mark.parametrize("name", ["ts_patch_moe", "ts_patch_dense"])
def test_windows_in_logits_out_with_the_router_per_patch(configs: dict, name: str) -> None:
    cfg = configs[name].model
    torch.manual_seed(0)
    model = build_series_model(CLASSES, CHANNELS, LENGTH, cfg).train()
    x, _ = toy_windows(5, 0)
    logits, aux, counts = model.forward_with_aux(x)
    assert logits.shape == (5, CLASSES) and logits.dtype == torch.float32
    assert aux.shape == ()
    if name == "ts_patch_moe":
        # one count vector per MoE block; the tokens are every patch of every channel
        assert len(counts) == cfg.num_blocks
        assert all(c.shape == (cfg.num_experts,) for c in counts)
        assert int(counts[0].sum()) == 5 * CHANNELS * cfg.seq_len * cfg.top_k
        assert float(aux) > 0
    else:
        assert counts == [] and float(aux) == 0.0


@pytest.mark.parametrize("name", ["ts_patch_moe", "ts_patch_dense"])
def test_it_learns_a_frequency_pattern_in_a_few_steps(configs: dict, name: str) -> None:
    cfg = configs[name].model
    torch.manual_seed(0)
    model = build_series_model(CLASSES, CHANNELS, LENGTH, cfg).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    x, y = toy_windows(32, 1)
    losses = []
    for _ in range(20):
        logits, aux, _ = model.forward_with_aux(x)
        loss = torch.nn.functional.cross_entropy(logits, y) + cfg.aux_loss_weight * aux
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss))
    held_out, truth = toy_windows(64, 2)
    with torch.no_grad():
        accuracy = float((model.eval()(held_out).argmax(1) == truth).float().mean())
    assert losses[-1] < 0.5 * losses[0], losses
    assert accuracy >= 0.9


def test_it_exports_to_onnx_with_a_dynamic_batch(configs: dict, tmp_path: Path) -> None:
    from pipelines.runtime import session

    cfg = configs["ts_patch_moe"].model
    torch.manual_seed(0)
    model = build_series_model(CLASSES, CHANNELS, LENGTH, cfg).eval()
    path = tmp_path / "patch.onnx"
    export_series_onnx(model, path, 17, CHANNELS, LENGTH)
    ort = session(path, cpu_only=True)
    for rows in (1, 4, 9):
        x, _ = toy_windows(rows, rows)
        (got,) = ort.run(None, {"windows": x.numpy()})
        with torch.no_grad():
            expected = torch.softmax(model(x), dim=-1).numpy()
        assert got.shape == (rows, CLASSES)
        assert np.abs(got - expected).max() < 1e-4


def test_patches_that_do_not_divide_the_window_stop_the_config(params: dict) -> None:
    with pytest.raises(PipelineError, match=r"'model\.seq_len' = 7 with 'data\.timeseries\."
                       r"window\.length' = 64: ts_patch_moe expects a number of patches that "
                       r"divides the window length"):  # fmt: skip
        load_params(params["ts_patch_moe"], [*SMALL_SERIES, *SMALL, "model.seq_len=7"])
