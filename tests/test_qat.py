"""Quantization-aware training: which layers get fake-quantized, that the fake quantization is
live while training and fixed after it, and that the exported QDQ graph is that model with
INT8 weights which ONNX Runtime runs on its integer kernels."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from pipelines.compression.finetune import FineTuning
from pipelines.compression.qat import (
    FakeQuantLinear,
    export_qat_onnx,
    fake_quant_layers,
    freeze_observers,
    prepare_qat,
    qat_fine_tune,
    strip_fake_quant,
)
from pipelines.compression.qdq_fold import INTEGER_OPS, optimized_ops
from pipelines.datamodule import TabularDataModule
from pipelines.errors import PipelineError
from pipelines.lightning_module import RiskClassifier
from pipelines.models.moe import MoEBlock
from pipelines.onnx_export import export_onnx, parity_check
from pipelines.quantization import input_projection_nodes, router_nodes
from pipelines.schema.compression import QatConfig
from pipelines.schema.model import ModelConfig
from pipelines.schema.training import TrainConfig
from pipelines.training import load_checkpoint, save_checkpoint
from tests.tiny_models import identity_scaled_classifier

N_FEATURES = 12
FEATURES = [f"f{i}" for i in range(N_FEATURES)]
BATCHES = [1, 7, 256]
INPUT_GEMM = "/model/inp/inp.0/Gemm"
# 2 blocks x 4 experts x 2 layers + the head; the input projection when it is not kept FP32
MOE_LAYERS = 17


def rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_FEATURES)).astype(np.float32)
    return x, (x[:, 0] + rng.normal(size=n) > 1).astype(np.float32)


def classifier(name: str = "moe_mlp", **overrides: object) -> RiskClassifier:
    cfg = ModelConfig(name=name, hidden_dim=16, ffn_dim=20, num_experts=4, **overrides)
    return identity_scaled_classifier(
        cfg, FEATURES, TrainConfig(batch_size=128, eval_batch_size=512)
    )


def datamodule() -> TabularDataModule:
    return TabularDataModule(rows(2048, 0), rows(512, 1), FEATURES, 128, 512)


Tuned = Callable[[str, bool], tuple[RiskClassifier, RiskClassifier, Path, dict]]


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> Tuned:
    """(float model before, QAT model, its QDQ file, info) per (model name, keep_input_fp32),
    fine-tuned once for the whole module."""
    cache: dict[tuple[str, bool], tuple[RiskClassifier, RiskClassifier, Path, dict]] = {}

    def get(name: str, keep_input_fp32: bool) -> tuple[RiskClassifier, RiskClassifier, Path, dict]:
        if (name, keep_input_fp32) not in cache:
            module = classifier(name)
            before = copy.deepcopy(module)
            qat, info = qat_fine_tune(
                module,
                datamodule(),
                QatConfig(finetune_epochs=1),
                FineTuning(3e-3, 0),
                keep_input_fp32,
            )
            path = tmp_path_factory.mktemp("qat") / "model_qat_int8.onnx"
            export_qat_onnx(qat.model, (N_FEATURES,), path, opset=17)
            cache[name, keep_input_fp32] = (before, qat, path, info)
        return cache[name, keep_input_fp32]

    return get


def graph_parts(path: Path) -> tuple[onnx.GraphProto, dict, dict]:
    graph = onnx.load(str(path)).graph
    inits = {i.name: i for i in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    return graph, inits, producers


def dequantized_inputs(node: onnx.NodeProto, producers: dict) -> list[str]:
    return [
        name
        for name in node.input
        if name in producers and producers[name].op_type == "DequantizeLinear"
    ]


# --- which layers are fake-quantized ----------------------------------------------------------


@pytest.mark.parametrize("keep_input_fp32", [True, False])
def test_every_linear_is_fake_quantized_except_the_routers_and_a_kept_input_projection(
    keep_input_fp32: bool,
) -> None:
    net = classifier().model
    weights = {name: p for name, p in net.named_parameters()}
    prepare_qat(net, keep_input_fp32=keep_input_fp32, per_channel=True)
    swapped = fake_quant_layers(net)
    assert len(swapped) == MOE_LAYERS + (not keep_input_fp32)
    for block in (m for m in net.modules() if isinstance(m, MoEBlock)):
        assert type(block.gate.wg) is nn.Linear
        assert all(isinstance(expert[0], FakeQuantLinear) for expert in block.experts)
    assert isinstance(net.inp[0], nn.Linear if keep_input_fp32 else FakeQuantLinear)
    # the same Parameter objects: the optimizer, the checkpoint keys and DeepSpeed's expert
    # flags all carry over
    assert {name: p for name, p in net.named_parameters()} == weights
    expert_weight = net.blocks[0].experts[0][0].weight
    assert expert_weight.allreduce is False


def test_weights_get_one_scale_per_output_row_or_one_per_tensor() -> None:
    for per_channel, scales in ((True, 20), (False, 1)):
        net = classifier().model.train()
        prepare_qat(net, keep_input_fp32=True, per_channel=per_channel)
        net(torch.from_numpy(rows(64, 0)[0]))
        assert net.blocks[0].experts[0][0].weight_fake_quant.scale.numel() == scales


def test_fake_quant_is_active_in_training_and_gradients_pass_through_it() -> None:
    """Inside DeepSpeed's MoE layer, on CPU: the training forward differs from the float
    model's, and the straight-through estimator gives every expert weight a gradient."""
    float_net = classifier(dropout=0.0, second_expert_sampling=False).model.train()
    qat_net = prepare_qat(copy.deepcopy(float_net), keep_input_fp32=True, per_channel=True)
    x = torch.from_numpy(rows(256, 0)[0])
    float_logits, qat_logits = float_net(x), qat_net(x)
    assert not torch.allclose(float_logits, qat_logits, atol=1e-4)
    assert (float_logits - qat_logits).abs().max() < 0.5  # quantized, not broken
    qat_logits.sum().backward()
    for layer in fake_quant_layers(qat_net).values():
        assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


def test_observers_learn_in_training_forwards_only() -> None:
    """Validation batches (eval mode) neither move the ranges nor leak into them."""
    net = prepare_qat(classifier().model, keep_input_fp32=True, per_channel=True)
    x = torch.from_numpy(rows(256, 0)[0])
    net.train()(x)
    head = net.head[1].input_fake_quant
    scale = head.scale.clone()
    with torch.no_grad():
        net.eval()(x * 5)
    assert torch.equal(head.scale, scale)
    net.train()(x * 5)
    assert not torch.equal(head.scale, scale)


# --- qat_fine_tune --------------------------------------------------------------------------


def test_qat_fine_tune_returns_the_fake_quantized_model_and_what_it_did(tuned: Tuned) -> None:
    _, qat, _, info = tuned("moe_mlp", True)
    assert isinstance(qat, RiskClassifier) and not qat.training
    assert len(fake_quant_layers(qat.model)) == info["fake_quant_layers"] == MOE_LAYERS
    assert info["epochs"] == 1 and info["lr"] == pytest.approx(3e-4)  # lr x lr_factor
    assert info["per_channel"] is True
    assert 0.0 < info["best_val_auprc"] <= 1.0
    assert sorted(info["float_layers"]) == [
        "blocks.0.moe.deepspeed_moe.gate.wg",
        "blocks.1.moe.deepspeed_moe.gate.wg",
        "inp.0",
    ]


def test_observers_are_frozen_after_qat_fine_tune(tuned: Tuned) -> None:
    _, qat, _, _ = tuned("moe_mlp", True)
    net = copy.deepcopy(qat.model)
    before = {k: v.clone() for k, v in net.state_dict().items() if k.endswith(".scale")}
    net.train()(torch.from_numpy(rows(256, 7)[0]) * 5)  # a training forward on other data
    after = {k: v for k, v in net.state_dict().items() if k.endswith(".scale")}
    assert len(before) == 2 * MOE_LAYERS
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_the_fine_tune_changes_the_weights(tuned: Tuned) -> None:
    before, qat, _, _ = tuned("moe_mlp", True)
    name = "model.blocks.0.moe.deepspeed_moe.experts.deepspeed_experts.0.0.weight"
    assert not torch.equal(before.state_dict()[name], qat.state_dict()[name])


# --- the exported QDQ graph -----------------------------------------------------------------


@pytest.mark.parametrize("keep_input_fp32", [True, False])
def test_the_exported_graph_is_qdq_with_int8_weights_and_fp32_routers(
    tuned: Tuned, keep_input_fp32: bool
) -> None:
    _, _, path, _ = tuned("moe_mlp", keep_input_fp32)
    graph, inits, producers = graph_parts(path)
    ops = [node.op_type for node in graph.node]
    layers = MOE_LAYERS + (not keep_input_fp32)
    # one activation pair per layer; weights are stored quantized, so only their DQ is left
    assert ops.count("QuantizeLinear") == layers
    assert ops.count("DequantizeLinear") == 3 * layers  # activation, weight, INT32 bias
    for node in graph.node:
        if node.op_type == "QuantizeLinear":
            assert node.input[0] not in inits  # no FP32 weight quantized at run time
        if node.op_type == "DequantizeLinear" and node.input[0] in inits:
            assert inits[node.input[0]].data_type in (onnx.TensorProto.INT8, onnx.TensorProto.INT32)
    routers = router_nodes(path)
    assert len(routers) == 2
    for node in (n for n in graph.node if n.name in routers):
        assert not dequantized_inputs(node, producers)
    (projection,) = [n for n in graph.node if n.name == INPUT_GEMM]
    if keep_input_fp32:
        assert input_projection_nodes(path) == [INPUT_GEMM]
        assert not dequantized_inputs(projection, producers)
        assert inits[projection.input[1]].data_type == onnx.TensorProto.FLOAT
    else:
        assert dequantized_inputs(projection, producers) == list(projection.input)


@pytest.mark.parametrize(("name", "layers"), [("moe_mlp", MOE_LAYERS), ("dense_mlp", 5)])
def test_onnx_runtime_runs_the_quantized_layers_on_integer_kernels(
    tuned: Tuned, name: str, layers: int
) -> None:
    """The graph ORT optimizes on CPU: each fake-quantized Linear became a QGemm (UINT8 x INT8
    with INT32 accumulation), and what stays float is the kept input projection (Gemm) and
    the routers (MatMul, no bias)."""
    _, _, path, _ = tuned(name, True)
    ops = optimized_ops(path)
    assert ops["QGemm"] == layers
    assert sum(ops[op] for op in INTEGER_OPS) == layers
    assert ops["DequantizeLinear"] == 0
    assert ops["Gemm"] == 1
    assert ops["MatMul"] == (2 if name == "moe_mlp" else 0)


@pytest.mark.parametrize(
    ("name", "keep_input_fp32"), [("moe_mlp", True), ("moe_mlp", False), ("dense_mlp", True)]
)
def test_the_qdq_graph_computes_the_fake_quant_model(
    tuned: Tuned, tmp_path: Path, name: str, keep_input_fp32: bool
) -> None:
    """The exporter's own graph is the fake-quant model op for op (1e-5: float rounding).
    Folding costs the INT32 bias only: ORT's integer GEMM adds the bias at scale
    s_in x s_w, and rounding it there moves a pre-activation by up to half that, enough to
    tip an activation of the next layer onto its neighbouring UINT8 level, ~1/255 of that
    layer's input range times its weights; measured up to 5e-3 in probability on these
    models, so atol 1e-2."""
    _, qat, path, _ = tuned(name, keep_input_fp32)
    x = rows(1000, 2)[0]
    unfolded = tmp_path / "unfolded.onnx"
    assert export_qat_onnx(qat.model, (N_FEATURES,), unfolded, opset=17, fold=False) == {}
    parity_check(qat.model, unfolded, x, BATCHES, atol=1e-5)
    parity_check(qat.model, path, x, BATCHES, atol=1e-2)


def test_the_stripped_float_model_is_a_plain_classifier_within_the_int8_tolerance(
    tuned: Tuned, tmp_path: Path
) -> None:
    """What the quantize stage checkpoints: a RiskClassifier with plain Linear layers and the
    fine-tuned weights, which the QDQ graph matches within the PTQ variants' 0.05. (Most of
    that budget goes to rows whose top-2 experts are a near tie: the FP32 router reads a
    residual stream carrying the quantization error.)"""
    _, qat, path, _ = tuned("moe_mlp", True)
    plain = strip_fake_quant(qat)
    assert not fake_quant_layers(plain.model)
    assert len(fake_quant_layers(qat.model)) == MOE_LAYERS  # the QAT model is untouched
    assert plain.state_dict().keys() == classifier().state_dict().keys()
    assert plain.model.blocks[0].experts[0][0].weight.allreduce is False
    save_checkpoint(plain, tmp_path / "qat.ckpt", {})
    loaded = load_checkpoint(tmp_path / "qat.ckpt")
    x = rows(1000, 2)[0]
    with torch.no_grad():
        assert torch.equal(plain.eval()(torch.from_numpy(x)), loaded(torch.from_numpy(x)))
    parity_check(loaded.model, path, x, BATCHES, atol=0.05)


def test_the_qat_file_is_much_smaller_than_the_fp32_export(tmp_path: Path) -> None:
    """INT8 weights in the file, not FP32 ones quantized at load: about a quarter of the
    weight bytes; routers, input projection, LayerNorms and per-row scales stay FP32."""
    torch.manual_seed(0)
    net = RiskClassifier(
        N_FEATURES,
        FEATURES,
        [0.0] * N_FEATURES,
        [1.0] * N_FEATURES,
        dataclasses.asdict(ModelConfig(hidden_dim=128, ffn_dim=256)),
        dataclasses.asdict(TrainConfig()),
    ).model
    export_onnx(net, (N_FEATURES,), tmp_path / "fp32.onnx", opset=17)
    prepare_qat(net, keep_input_fp32=True, per_channel=True)
    with torch.no_grad():
        net.train()(torch.from_numpy(rows(512, 0)[0]))
    freeze_observers(net)
    export_qat_onnx(net.eval(), (N_FEATURES,), tmp_path / "qat.onnx", opset=17)
    ratio = (tmp_path / "qat.onnx").stat().st_size / (tmp_path / "fp32.onnx").stat().st_size
    assert ratio <= 0.35  # measured 0.30


def test_export_refuses_a_model_whose_observers_saw_no_data(tmp_path: Path) -> None:
    """Uncalibrated fake quantization has scale 1: an export would quantize everything to
    whole numbers."""
    net = prepare_qat(classifier().model, keep_input_fp32=True, per_channel=True)
    with pytest.raises(PipelineError, match="seen no data"):
        export_qat_onnx(net.eval(), (N_FEATURES,), tmp_path / "qat.onnx", opset=17)
