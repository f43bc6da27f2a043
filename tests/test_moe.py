"""The MoE classifier uses DeepSpeed's MoE layer and exports with a dynamic batch axis."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from deepspeed.moe.layer import MoE

from pipelines.errors import PipelineError
from pipelines.models.build import build_model
from pipelines.models.moe import MoEBlock, count_parameters, exportable
from pipelines.onnx_export import export_onnx, parity_check
from pipelines.schema.model import ModelConfig

N_FEATURES = 12


def model(**overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = ModelConfig(**overrides)
    return build_model(N_FEATURES, cfg, [0.0] * N_FEATURES, [1.0] * N_FEATURES).eval()


def test_moe_blocks_are_deepspeed_moe_layers_with_distinct_experts() -> None:
    net = model()
    blocks = [m for m in net.modules() if isinstance(m, MoEBlock)]
    assert len(blocks) == 2 and all(isinstance(b.moe, MoE) for b in blocks)
    first, second = blocks[0].experts[0], blocks[0].experts[1]
    assert not torch.equal(first[0].weight, second[0].weight)


def test_training_forward_returns_load_balancing_loss_and_tokens_per_expert() -> None:
    net = model().train()
    logits, aux, counts = net.forward_with_aux(torch.randn(64, N_FEATURES))
    assert logits.shape == (64,)
    assert aux.item() > 0
    assert len(counts) == 2 and all(int(c.sum()) == 64 * 2 for c in counts)  # top-2 routing


def test_inference_is_deterministic_even_with_second_expert_sampling() -> None:
    net = model(second_expert_sampling=True)
    x = torch.randn(100, N_FEATURES)
    with torch.no_grad():
        assert torch.equal(net(x), net(x))


@pytest.mark.parametrize("eval_capacity_factor", [2.0, 0.3])  # 0.3 forces token dropping
@pytest.mark.parametrize("batch", [1, 7, 256, 1000])
def test_exportable_routing_matches_deepspeed(eval_capacity_factor: float, batch: int) -> None:
    net = model(eval_capacity_factor=eval_capacity_factor)
    x = torch.randn(batch, N_FEATURES) * 3
    with torch.no_grad():
        reference = net(x)
        with exportable(net):
            routed = net(x)
    torch.testing.assert_close(routed, reference, atol=1e-5, rtol=1e-5)


def test_onnx_export_matches_pytorch_at_several_batch_sizes(tmp_path: Path) -> None:
    net = model(eval_capacity_factor=0.5)
    path = tmp_path / "model.onnx"
    export_onnx(net, (N_FEATURES,), path, opset=17)
    x = np.random.default_rng(0).normal(size=(512, N_FEATURES)).astype(np.float32)
    diffs = parity_check(net, path, x, [1, 7, 256, 512], atol=1e-5)
    assert set(diffs) == {"1", "7", "256", "512"}


def test_parity_check_runs_batches_larger_than_the_rows_there_are(tmp_path: Path) -> None:
    """A small table's test split (150 rows) still gets checked at the serving batch (256)."""
    net = model(eval_capacity_factor=0.5)
    path = tmp_path / "model.onnx"
    export_onnx(net, (N_FEATURES,), path, opset=17)
    x = np.random.default_rng(0).normal(size=(150, N_FEATURES)).astype(np.float32)
    diffs = parity_check(net, path, x, [1, 256, 1000], atol=1e-5)
    assert set(diffs) == {"1", "256", "1000"}


def test_parity_check_fails_loudly_when_outputs_diverge(tmp_path: Path) -> None:
    net = model()
    path = tmp_path / "model.onnx"
    export_onnx(net, (N_FEATURES,), path, opset=17)
    with torch.no_grad():
        net.head[1].bias += 1.0  # the PyTorch model no longer matches the exported graph
    x = np.random.default_rng(0).normal(size=(16, N_FEATURES)).astype(np.float32)
    with pytest.raises(PipelineError, match="diverges"):
        parity_check(net, path, x, [1, 7], atol=1e-4)


def test_dense_baseline_matches_moe_active_parameters_per_row() -> None:
    moe = count_parameters(model())
    dense = count_parameters(model(name="dense_mlp", ffn_dim=256, num_experts=1, top_k=1))
    # the gate's few weights are the only difference
    assert abs(moe["active_per_row"] - dense["active_per_row"]) / dense["active_per_row"] < 0.01


@pytest.mark.parametrize("name", ["moe_mlp", "dense_mlp"])
def test_a_row_model_cast_to_bf16_takes_float32_batches_and_returns_float32_logits(
    name: str,
) -> None:
    """DeepSpeed's bf16 mode casts the whole module, buffers too, while Lightning hands the
    batch over in float32 (a dtype error in every DeepSpeed bf16 run on an H200 before)."""
    torch.manual_seed(0)
    cfg = ModelConfig(name=name, num_experts=4 if name == "moe_mlp" else 1)
    model = build_model(5, cfg, [1.0] * 5, [2.0] * 5).eval()
    x = torch.randn(16, 5)
    reference = model(x)
    logits = model.bfloat16()(x)
    assert logits.dtype == torch.float32
    # the same function at bf16 precision (a row near a routing tie may take another expert)
    assert torch.isfinite(logits).all()
    assert (logits - reference).abs().median() < 0.02
