"""Structured L1 pruning of the feed-forward widths and the attention heads: the pruned model is
physically narrower (its ONNX graph and parameter count say so), each feed-forward keeps its own
largest-L1 units and each attention layer its own largest-L1 heads at their old width,
everything else is copied exactly, checkpoints round-trip, and the iterative schedule with its
fine-tunes ends at the target width and head count."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from pipelines.compression.finetune import FineTuning
from pipelines.compression.pruning import (
    iterative_prune,
    prune_ffn,
    prune_model,
    prune_schedule,
    pruned_width,
)
from pipelines.datamodule import TabularDataModule
from pipelines.errors import PipelineError
from pipelines.lightning_module import RiskClassifier
from pipelines.models.moe import DenseBlock, MoEBlock, count_parameters
from pipelines.models.sequence import SelfAttention
from pipelines.onnx_export import export_onnx
from pipelines.schema.compression import PruneConfig
from pipelines.schema.model import ModelConfig
from pipelines.schema.training import TrainConfig
from tests.tiny_models import identity_scaled_classifier

N_FEATURES, HIDDEN, FFN, SEQ_LEN = 5, 16, 20, 6
FEATURES = [f"f{i}" for i in range(N_FEATURES)]


def classifier(
    name: str, *, ffn_dim: int = FFN, num_experts: int = 3, num_heads: int = 2
) -> RiskClassifier:
    model = ModelConfig(
        name=name,
        hidden_dim=HIDDEN,
        ffn_dim=ffn_dim,
        num_blocks=2,
        num_experts=num_experts,
        top_k=2,
        dropout=0.0,
        seq_len=SEQ_LEN,
        num_heads=num_heads,
    )
    settings = TrainConfig(batch_size=64, eval_batch_size=128)
    return identity_scaled_classifier(model, FEATURES, settings).eval()


def inputs(name: str, rows: int = 32) -> torch.Tensor:
    """Raw rows, or customer histories (as tests/test_sequence_models.py builds them)."""
    rng = np.random.default_rng(1)
    if not ModelConfig(name=name).is_sequence:
        return torch.from_numpy(rng.normal(size=(rows, N_FEATURES)).astype(np.float32))
    x = rng.normal(size=(rows, SEQ_LEN, N_FEATURES + 1)).astype(np.float32)
    lengths = rng.integers(1, SEQ_LEN + 1, size=rows)
    present = (np.arange(SEQ_LEN)[None, :] >= SEQ_LEN - lengths[:, None]).astype(np.float32)
    x[..., -1] = present
    x[..., :-1] *= present[..., None]
    return torch.from_numpy(x)


def feed_forwards(module: RiskClassifier) -> list[nn.Sequential]:
    """Each expert of each MoE block and each dense block's feed-forward, in model order."""
    out: list[nn.Sequential] = []
    for block in module.model.modules():
        if isinstance(block, MoEBlock):
            out.extend(block.experts)
        elif isinstance(block, DenseBlock):
            out.append(block.ffn)
    return out


def outputs(module: RiskClassifier, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return module(x)


# --- the schedule ---------------------------------------------------------------------------


def test_each_step_removes_a_further_share_of_the_original_width_ending_at_the_target() -> None:
    steps = prune_schedule(128, step=0.2, target=0.6)
    assert [width for _, width in steps] == [102, 77, 51]
    assert [share for share, _ in steps] == pytest.approx([0.2, 0.4, 0.6])
    # a step that does not divide the target: the last step is shorter, still the target
    steps = prune_schedule(20, step=0.25, target=0.6)
    assert steps == [(0.25, 15), (0.5, 10), (0.6, 8)]


def test_widths_round_to_the_nearest_unit_half_up_and_never_reach_zero() -> None:
    assert pruned_width(10, 0.25) == 8  # 7.5 keeps the unit
    assert pruned_width(128, 0.6) == 51  # 51.2
    assert pruned_width(3, 0.99) == 1


def test_a_step_that_would_not_shrink_a_narrow_layer_merges_into_the_one_before() -> None:
    # 4 units: 3.2 -> 3, 2.4 -> 2, 1.6 -> 2 again; every step prunes, the last is the target's
    assert prune_schedule(4, step=0.2, target=0.6) == [(0.2, 3), (0.6, 2)]
    assert prune_schedule(1, step=0.2, target=0.6) == []


# --- one pruning step -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["moe_mlp", "moe_transformer"])
def test_the_pruned_graph_is_narrower_not_masked(name: str, tmp_path: Path) -> None:
    import onnx

    module = classifier(name)
    width = 12
    pruned = prune_ffn(module, width)
    shape = (N_FEATURES,) if name == "moe_mlp" else (SEQ_LEN, N_FEATURES + 1)
    dims: dict[str, list[tuple[int, ...]]] = {}
    for label, m in (("original", module), ("pruned", pruned)):
        path = tmp_path / f"{label}.onnx"
        export_onnx(m.model, shape, path, opset=17)
        dims[label] = [tuple(t.dims) for t in onnx.load(str(path)).graph.initializer]

    assert not any(FFN in d for d in dims["pruned"])
    # every weight and bias that had the original width has `width` now, one for one: each
    # expert's two Linears and first bias (3 experts x 2 blocks)
    with_ffn = sorted(tuple(width if n == FFN else n for n in d) for d in dims["original"])
    assert len([d for d in dims["original"] if FFN in d]) == 3 * 2 * 3
    assert sorted(dims["pruned"]) == with_ffn

    # each feed-forward loses (row + bias + column) per removed unit; nothing else changes
    removed = (FFN - width) * (2 * HIDDEN + 1) * len(feed_forwards(module))
    before, after = count_parameters(module.model), count_parameters(pruned.model)
    assert before["total"] - after["total"] == removed
    assert after["active_per_row"] < before["active_per_row"]
    assert pruned.hparams["model"]["ffn_dim"] == width
    assert module.hparams["model"]["ffn_dim"] == FFN  # the input module is untouched


@pytest.mark.parametrize("name", ["moe_mlp", "dense_mlp", "moe_transformer", "dense_transformer"])
def test_units_that_contribute_nothing_are_the_ones_removed_and_the_rest_copied_exactly(
    name: str,
) -> None:
    module = classifier(name)
    dead_per_ffn = 7
    rng = np.random.default_rng(2)
    live: list[torch.Tensor] = []
    with torch.no_grad():
        for ffn in feed_forwards(module):
            # different dead units in every feed-forward, so no shared index list can pass
            order = torch.from_numpy(rng.permutation(FFN))
            dead, keep = order[:dead_per_ffn], order[dead_per_ffn:].sort().values
            ffn[0].weight[dead] = 0.0
            ffn[0].bias[dead] = 0.0
            ffn[3].weight[:, dead] = 0.0
            live.append(keep)
    x = inputs(name)
    expected = outputs(module, x)

    pruned = prune_ffn(module, FFN - dead_per_ffn)

    assert not pruned.training
    torch.testing.assert_close(outputs(pruned, x), expected, atol=1e-6, rtol=0)
    for ffn, small, keep in zip(feed_forwards(module), feed_forwards(pruned), live, strict=True):
        assert torch.equal(small[0].weight, ffn[0].weight[keep])
        assert torch.equal(small[0].bias, ffn[0].bias[keep])
        assert torch.equal(small[3].weight, ffn[3].weight[:, keep])
        assert torch.equal(small[3].bias, ffn[3].bias)
    # every tensor outside the feed-forwards' hidden units: same name, shape and values
    narrowed = {".0.weight", ".0.bias", ".3.weight"}
    ffn_names = {
        n for n, m in module.model.named_modules() if any(m is f for f in feed_forwards(module))
    }
    original = module.model.state_dict()
    for key, value in pruned.model.state_dict().items():
        if any(key == prefix + suffix for prefix in ffn_names for suffix in narrowed):
            continue
        assert torch.equal(value, original[key]), key


def test_each_expert_keeps_its_own_largest_l1_units_in_their_original_order() -> None:
    module = classifier("moe_mlp", num_experts=3)
    width = 8
    rng = np.random.default_rng(3)
    wanted: list[torch.Tensor] = []
    with torch.no_grad():
        for ffn in feed_forwards(module):
            keep = torch.from_numpy(rng.choice(FFN, size=width, replace=False)).sort().values
            # 10x the incoming row: its L1 norm outranks every unscaled row of the layer
            ffn[0].weight[keep] *= 10.0
            wanted.append(keep)
    assert len({tuple(k.tolist()) for k in wanted}) == len(wanted)  # the experts disagree

    pruned = prune_ffn(module, width)

    for ffn, small, keep in zip(feed_forwards(module), feed_forwards(pruned), wanted, strict=True):
        assert torch.equal(small[0].weight, ffn[0].weight[keep])
        assert torch.equal(small[3].weight, ffn[3].weight[:, keep])


def test_a_model_without_feed_forward_blocks_is_refused_naming_the_model() -> None:
    with pytest.raises(PipelineError, match=r"model\.name=bilstm_attention: .*feed-forward"):
        prune_ffn(classifier("bilstm_attention"), 10)


@pytest.mark.parametrize("width", [FFN, FFN + 5, 0])
def test_a_width_that_does_not_shrink_the_layer_is_refused_naming_the_key(width: int) -> None:
    with pytest.raises(PipelineError, match=rf"model\.ffn_dim={FFN}: .*got {width}$"):
        prune_ffn(classifier("dense_mlp"), width)


def test_a_pruned_checkpoint_loads_with_its_width_and_gives_identical_outputs(
    tmp_path: Path,
) -> None:
    from pipelines.training import load_checkpoint, save_checkpoint

    pruned = prune_ffn(classifier("moe_mlp"), 11)
    path = tmp_path / "pruned.ckpt"
    save_checkpoint(pruned, path, {})
    loaded = load_checkpoint(path)
    assert loaded.hparams["model"]["ffn_dim"] == 11
    x = inputs("moe_mlp")
    assert torch.equal(outputs(loaded, x), outputs(pruned, x))


# --- iterative pruning with fine-tuning -----------------------------------------------------


def tiny_data(rows: int = 256, seed: int = 0) -> TabularDataModule:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows + 128, N_FEATURES)).astype(np.float32)
    y = (x[:, 0] + 0.5 * rng.normal(size=len(x)) > 0.8).astype(np.float32)
    return TabularDataModule(
        (x[:rows], y[:rows]), (x[rows:], y[rows:]), FEATURES, 64, 128, seed=seed
    )


def test_iterative_pruning_fine_tunes_after_each_step_and_ends_at_the_target_width(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pipelines.compression.pruning as pruning

    calls: list[dict[str, Any]] = []
    real_fine_tune = pruning.fine_tune

    def recording_fine_tune(
        module: RiskClassifier, dm: TabularDataModule, tuning: FineTuning, **kw: Any
    ) -> Any:
        calls.append(
            {
                "width": module.hparams["model"]["ffn_dim"],
                "all_training": all(m.training for m in module.modules()),
                "seed": tuning.seed,
                "lr": tuning.lr,
                **kw,
            }
        )
        tuned, info = real_fine_tune(module, dm, tuning, **kw)
        calls[-1]["info"] = info
        return tuned, info

    monkeypatch.setattr(pruning, "fine_tune", recording_fine_tune)
    module = classifier("moe_mlp", num_experts=2)
    cfg = PruneConfig(step=0.2, target=0.6, finetune_epochs=1, lr_factor=0.1)

    final, history = iterative_prune(module, tiny_data(), cfg, FineTuning(lr=3e-3, seed=0))

    assert [h["width"] for h in history] == [16, 12, 8]
    assert [h["removed_share"] for h in history] == pytest.approx([0.2, 0.4, 0.6])
    # each step: the pruned model fine-tuned in train mode (dropout, training-time routing)
    assert [c["width"] for c in calls] == [16, 12, 8]
    assert all(c["all_training"] for c in calls)
    assert [(c["epochs"], c["lr"], c["seed"]) for c in calls] == [(1, pytest.approx(3e-4), 0)] * 3
    assert [h["best_val_auprc"] for h in history] == [c["info"]["best_val_auprc"] for c in calls]
    params = [h["parameters"] for h in history]
    assert params == sorted(params, reverse=True) and len(set(params)) == 3
    assert params[-1] == count_parameters(final.model)["total"]
    assert final.hparams["model"]["ffn_dim"] == 8 and not final.training
    assert {tuple(f[0].weight.shape) for f in feed_forwards(final)} == {(8, HIDDEN)}
    assert module.hparams["model"]["ffn_dim"] == FFN  # the caller's module is untouched


def test_iterative_pruning_refuses_before_any_fine_tune() -> None:
    with pytest.raises(PipelineError, match=r"model\.name=bilstm_attention"):
        iterative_prune(
            classifier("bilstm_attention"), tiny_data(), PruneConfig(), FineTuning(1e-3, 0)
        )
    # two units, 20% off: the width rounds back to 2, so no step would prune anything
    narrow = classifier("dense_mlp", ffn_dim=2)
    with pytest.raises(PipelineError, match=r"quantize\.prune\.target=0\.2: removes no unit"):
        iterative_prune(narrow, tiny_data(), PruneConfig(step=0.1, target=0.2), FineTuning(1e-3, 0))


# --- attention heads --------------------------------------------------------------------------


def attentions(module: RiskClassifier) -> list[SelfAttention]:
    return [m for m in module.model.modules() if isinstance(m, SelfAttention)]


def head_rows(heads: list[int], head_dim: int) -> torch.Tensor:
    return torch.tensor([h * head_dim + i for h in heads for i in range(head_dim)])


@pytest.mark.parametrize("name", ["moe_transformer", "dense_transformer"])
def test_each_attention_layer_keeps_its_own_largest_l1_heads_at_their_old_width(
    name: str, tmp_path: Path
) -> None:
    module = classifier(name, num_heads=4)  # 4 heads of 16 / 4 = 4
    wanted = [[0, 2], [1, 3]]  # per layer: different heads win
    with torch.no_grad():
        for attention, heads in zip(attentions(module), wanted, strict=True):
            rows = head_rows(heads, 4)
            for projection in (attention.query, attention.key, attention.value):
                projection.weight[rows] *= 10.0

    pruned = prune_model(module, heads=2)

    assert pruned.hparams["model"]["num_heads"] == 2
    assert pruned.hparams["model"]["head_dim"] == 4  # no longer hidden_dim / num_heads
    assert pruned.hparams["model"]["ffn_dim"] == FFN  # widths untouched when not asked
    for big, small, heads in zip(attentions(module), attentions(pruned), wanted, strict=True):
        rows = head_rows(heads, 4)
        assert (small.num_heads, small.head_dim) == (2, 4)
        for projection in ("query", "key", "value"):
            assert torch.equal(
                getattr(small, projection).weight, getattr(big, projection).weight[rows]
            )
            assert torch.equal(getattr(small, projection).bias, getattr(big, projection).bias[rows])
        assert torch.equal(small.out.weight, big.out.weight[:, rows])
        assert torch.equal(small.out.bias, big.out.bias)
    assert count_parameters(pruned.model)["total"] < count_parameters(module.model)["total"]

    # the exported graph carries the narrower projections
    path = tmp_path / "pruned.onnx"
    export_onnx(pruned.model, (SEQ_LEN, N_FEATURES + 1), path, opset=17)
    import onnx

    shapes = {tuple(t.dims) for t in onnx.load(str(path)).graph.initializer}
    assert (HIDDEN, 8) in shapes and (HIDDEN, 16) not in shapes  # query/key/value: 2 x 4 wide
    assert (8, HIDDEN) in shapes  # the output projection reads 2 heads of 4


def test_removing_heads_that_contribute_nothing_changes_no_output() -> None:
    module = classifier("moe_transformer", num_heads=4)
    with torch.no_grad():
        for attention in attentions(module):
            dead = head_rows([1, 2], 4)
            # a head whose values and output columns are zero adds nothing to the residual
            attention.value.weight[dead] = 0.0
            attention.value.bias[dead] = 0.0
            attention.out.weight[:, dead] = 0.0
            # and its query/key rows are small, so the L1 ranking drops it
            attention.query.weight[dead] *= 1e-3
            attention.key.weight[dead] *= 1e-3
    x = inputs("moe_transformer")

    pruned = prune_model(module, heads=2)

    assert torch.allclose(outputs(pruned, x), outputs(module, x), atol=1e-6)


def test_pruning_heads_and_widths_together_round_trips_through_a_checkpoint(
    tmp_path: Path,
) -> None:
    from pipelines.training import load_checkpoint, save_checkpoint

    pruned = prune_model(classifier("moe_transformer", num_heads=4), width=11, heads=3)
    path = tmp_path / "pruned.ckpt"
    save_checkpoint(pruned, path, {})
    loaded = load_checkpoint(path)
    assert {k: loaded.hparams["model"][k] for k in ("ffn_dim", "num_heads", "head_dim")} == {
        "ffn_dim": 11,
        "num_heads": 3,
        "head_dim": 4,
    }
    x = inputs("moe_transformer")
    assert torch.equal(outputs(loaded, x), outputs(pruned, x))


def test_heads_are_refused_where_there_are_none_or_the_count_would_not_shrink() -> None:
    with pytest.raises(PipelineError, match=r"model\.name=moe_mlp: has no attention heads"):
        prune_model(classifier("moe_mlp"), heads=1)
    for heads in (4, 5, 0):
        with pytest.raises(PipelineError, match=rf"model\.num_heads=4: .*got {heads}$"):
            prune_model(classifier("dense_transformer", num_heads=4), heads=heads)


def fine_tune_unchanged(module: RiskClassifier, dm: TabularDataModule, *_: Any, **kw: Any) -> Any:
    return module.eval(), {"best_val_auprc": 0.5}


@pytest.mark.parametrize(("prune_heads", "expected_heads"), [(True, [3, 2, 2]), (False, [4, 4, 4])])
def test_iterative_pruning_removes_the_same_share_of_heads_at_each_step(
    monkeypatch: pytest.MonkeyPatch, prune_heads: bool, expected_heads: list[int]
) -> None:
    import pipelines.compression.pruning as pruning

    monkeypatch.setattr(pruning, "fine_tune", fine_tune_unchanged)
    module = classifier("dense_transformer", num_heads=4)
    cfg = PruneConfig(step=0.2, target=0.6, heads=prune_heads)

    final, history = iterative_prune(module, tiny_data(), cfg, FineTuning(lr=1e-3, seed=0))

    # 4 heads: 20% off keeps 3 (3.2), 40% keeps 2 (2.4), 60% keeps 2 (1.6 rounds up)
    assert [h["heads"] for h in history] == expected_heads
    assert [h["width"] for h in history] == [16, 12, 8]
    assert [a.num_heads for a in attentions(final)] == [expected_heads[-1]] * 2
