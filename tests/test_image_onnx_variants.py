"""The image classifier's ONNX variants: the FP32 graph scores as PyTorch does at any batch;
static INT8 quantizes every conv with per-output-channel weight scales, dynamic INT8 stores
INT8 weights; both keep the MoE routers FP32, are smaller than FP32, and agree with FP32 on
simulated surface images (where a wrongly calibrated INT8 graph does not); calibration reads
only the configured images; the same inputs give the same files."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, numpy_helper

from pipelines.core.onnx_variants import FP32, INT8_DYNAMIC, INT8_STATIC
from pipelines.modalities.image.config import NO_IMAGE_DIRT, ImageSimulatorConfig
from pipelines.modalities.image.onnx_variants import (
    export_image_variants,
    image_parity,
    image_router_nodes,
    onnx_image_probabilities,
)
from pipelines.modalities.image.preprocess import channel_statistics, decode_images, normalise
from pipelines.modalities.image.simulator import simulate_images
from pipelines.models.image import build_image_model
from pipelines.schema.compression import QuantizeConfig, StaticQuantConfig
from pipelines.schema.model import ModelConfig

SIZE, OPSET, TRAIN = 32, 17, 96
MOE = ["image_cnn_moe", "image_patch_moe"]


@pytest.fixture(scope="module")
def surfaces() -> dict:
    """160 clean simulated surfaces at 32 x 32, the four classes equally likely, normalised
    with the first 96 images' statistics; those 96 fit the head and calibrate, the rest are
    held out."""
    shares = dict.fromkeys(("clean", "scratch", "spot", "crack"), 1.0)
    sim = ImageSimulatorConfig(height=SIZE, width=SIZE, dirt=NO_IMAGE_DIRT, class_shares=shares)
    ds = simulate_images(160, seed=0, cfg=sim)
    names = sorted(set(ds["label"]))
    pixels = decode_images(ds, SIZE)
    mean, std = channel_statistics(pixels[:TRAIN])
    y = np.array([names.index(label) for label in ds["label"]], dtype=np.int64)
    return {"x": normalise(pixels, mean, std), "y": y, "names": names}


def image_cfg(name: str, hidden: int = 32) -> ModelConfig:
    return ModelConfig(
        name=name,
        hidden_dim=hidden,
        ffn_dim=hidden,
        num_blocks=2,
        num_experts=4,
        num_heads=2,
        seq_len=16,  # a 4 x 4 grid of 8 px patches
        dropout=0.0,
    )


def fit_head(model: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> None:
    """Train only the class head on the frozen random backbone's features: a few
    milliseconds, where training the whole model takes half a minute on two cores, and it
    gives the model real decisions on real images for INT8 to keep or break."""
    head = model.head[1]
    features: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda _m, inputs, _o: features.append(inputs[0]))
    with torch.no_grad():
        model(torch.from_numpy(x))
    hook.remove()
    optimizer = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(200):
        loss = torch.nn.functional.cross_entropy(head(features[0]), torch.from_numpy(y))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


def quantize_cfg(rows: int = 64) -> QuantizeConfig:
    # as conf/experiment/visual_inspection.yaml sets it: per-channel static weights
    return QuantizeConfig(static=StaticQuantConfig(calibration_rows=rows, per_channel=True))


@pytest.fixture(scope="module")
def exported(surfaces: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Per MoE model: the head-fitted model and its three files, calibrated on the train
    images."""
    out = {}
    for name in MOE:
        torch.manual_seed(0)
        model = build_image_model(len(surfaces["names"]), SIZE, image_cfg(name)).eval()
        fit_head(model, surfaces["x"][:TRAIN], surfaces["y"][:TRAIN])
        folder = tmp_path_factory.mktemp(name)
        paths = export_image_variants(
            model, folder, surfaces["x"][:TRAIN], SIZE, quantize_cfg(), OPSET
        )
        out[name] = {"model": model, "paths": paths}
    return out


def nodes(path: Path) -> tuple[onnx.GraphProto, dict[str, onnx.NodeProto], dict]:
    graph = onnx.load(str(path)).graph
    producer = {o: n for n in graph.node for o in n.output}
    return graph, producer, {t.name: t for t in graph.initializer}


@pytest.mark.parametrize("name", MOE)
def test_the_fp32_graph_matches_pytorch_at_any_batch(exported, surfaces, name: str) -> None:
    model, paths = exported[name]["model"], exported[name]["paths"]
    assert set(paths) == {FP32, INT8_DYNAMIC, INT8_STATIC}
    assert image_parity(model, paths[FP32], SIZE, batches=(1, 3, 32), seed=3) <= 1e-4
    held_out = surfaces["x"][TRAIN:]
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(held_out)), dim=-1).numpy()
    # batches of 7 leave a short last batch: the rows come back whole and in order
    got = onnx_image_probabilities(paths[FP32], held_out, threads=1, batch_size=7)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert onnx_image_probabilities(paths[FP32], held_out[:0]).shape == (0, 4)


@pytest.mark.parametrize("name", MOE)
def test_static_int8_quantizes_every_conv_per_output_channel(exported, name: str) -> None:
    paths = exported[name]["paths"]
    fp32_convs = [n.name for n in onnx.load(str(paths[FP32])).graph.node if n.op_type == "Conv"]
    graph, producer, weights = nodes(paths[INT8_STATIC])
    convs = [n for n in graph.node if n.op_type == "Conv"]
    # the CNN's six backbone convs; the patch model's one patchify conv
    assert len(convs) == len(fp32_convs) == (6 if "cnn" in name else 1)
    for conv in convs:
        activation, weight = producer[conv.input[0]], producer[conv.input[1]]
        assert activation.op_type == "DequantizeLinear", conv.name
        assert weight.op_type == "DequantizeLinear", conv.name
        q_weight, scale = weights[weight.input[0]], weights[weight.input[1]]
        assert q_weight.data_type == TensorProto.INT8
        out_channels = q_weight.dims[0]
        assert {a.name: a.i for a in weight.attribute}.get("axis") == 0
        assert numpy_helper.to_array(scale).shape == (out_channels,)
        assert len(set(numpy_helper.to_array(scale).tolist())) > 1  # one scale per filter
    assert Counter(n.op_type for n in graph.node)["QuantizeLinear"] > 0


@pytest.mark.parametrize("name", MOE)
def test_dynamic_int8_stores_int8_weights(exported, name: str) -> None:
    graph, _, weights = nodes(exported[name]["paths"][INT8_DYNAMIC])
    ops = Counter(n.op_type for n in graph.node)
    # Conv stays FP32 in the dynamic graph: ORT's CPU ConvInteger is ~10x slower than Conv
    assert ops["ConvInteger"] == 0 and ops["Conv"] == (6 if "cnn" in name else 1)
    assert ops["MatMulInteger"] >= 8 * 2 + 1  # 4 experts x 2 layers x 2 blocks, and the head
    for node in graph.node:
        if node.op_type == "MatMulInteger":
            assert weights[node.input[1]].data_type == TensorProto.INT8, node.name


@pytest.mark.parametrize("name", MOE)
def test_the_moe_routers_stay_fp32_in_both_int8_graphs(exported, name: str) -> None:
    paths = exported[name]["paths"]
    routers = [r for r in image_router_nodes(paths[FP32]) if not r.endswith("_MatMul")]
    assert len(routers) == 2  # one gate per MoE block; not the class head
    for variant in (INT8_DYNAMIC, INT8_STATIC):
        graph, producer, weights = nodes(paths[variant])
        by_name = {n.name: n for n in graph.node}
        for router in routers:
            node = by_name[router]
            assert node.op_type == "MatMul", (variant, router)
            assert weights[node.input[1]].data_type == TensorProto.FLOAT
            # it routes on the FP32 features, not on their INT8-rounded copy
            source = producer.get(node.input[0])
            assert source is None or source.op_type not in (
                "DequantizeLinear",
                "DynamicQuantizeLinear",
            ), (variant, router, source.op_type)


def agreement(path: Path, x: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """How often the variant picks FP32's class where FP32 is not near a tie (its top two
    probabilities 0.1 or more apart), and its mean absolute probability error."""
    got = onnx_image_probabilities(path, x)
    top2 = np.sort(reference, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] >= 0.1
    agree = (got.argmax(1) == reference.argmax(1))[clear].mean()
    return float(agree), float(np.abs(got - reference).mean())


@pytest.mark.parametrize("name", MOE)
def test_int8_agrees_with_fp32_where_a_wrong_calibration_does_not(
    exported, surfaces, name: str, tmp_path: Path
) -> None:
    model, paths = exported[name]["model"], exported[name]["paths"]
    held_out = surfaces["x"][TRAIN:]
    reference = onnx_image_probabilities(paths[FP32], held_out)
    # the fitted head makes varied decisions, most of them clear of a tie: the agreement
    # below is measured on a real sample, not on one class or on coin flips
    top2 = np.sort(reference, axis=1)[:, -2:]
    assert len(set(reference.argmax(1).tolist())) >= 3
    assert (top2[:, 1] - top2[:, 0] >= 0.1).sum() >= 40
    for variant in (INT8_DYNAMIC, INT8_STATIC):
        agree, mean_error = agreement(paths[variant], held_out, reference)
        # measured: 0.91 to 0.98 agreement, mean errors 0.017 to 0.031 (a random backbone's
        # features differ little between images, so the fitted head magnifies INT8 noise)
        assert agree >= 0.85 and mean_error <= 0.05, (variant, agree, mean_error)
    # the control: the same static quantization calibrated on blank images clips every
    # activation range, and the check catches it
    cfg = replace(quantize_cfg(), dynamic=replace(QuantizeConfig().dynamic, enabled=False))
    blank = export_image_variants(
        model, tmp_path, np.zeros_like(surfaces["x"][:TRAIN]), SIZE, cfg, OPSET
    )
    agree, mean_error = agreement(blank[INT8_STATIC], held_out, reference)
    # measured: 0.20 to 0.28 agreement (chance), mean errors 0.31 to 0.34
    assert agree < 0.6 and mean_error > 0.15, (agree, mean_error)


def test_int8_files_are_smaller_than_fp32_at_a_real_width(surfaces, tmp_path: Path) -> None:
    """At hidden 64 nearly all bytes are weights, stored 1 byte instead of 4: all of them in
    static INT8, the matrix products' (experts, head) in dynamic INT8, whose convs stay FP32."""
    torch.manual_seed(0)
    model = build_image_model(4, SIZE, image_cfg("image_cnn_moe", hidden=64)).eval()
    paths = export_image_variants(model, tmp_path, surfaces["x"][:16], SIZE, quantize_cfg(), 17)
    fp32 = paths[FP32].stat().st_size
    assert paths[INT8_DYNAMIC].stat().st_size < 0.9 * fp32
    assert paths[INT8_STATIC].stat().st_size < 0.5 * fp32


def test_calibration_reads_only_the_configured_images_and_files_repeat(
    exported, surfaces, tmp_path: Path
) -> None:
    """Images past calibration_rows (here wild ones) change nothing; the same inputs give
    byte-identical files."""
    model = exported["image_cnn_moe"]["model"]
    x = surfaces["x"][:TRAIN]
    wild = np.concatenate([x[:64], 100 * np.ones_like(x[:32])])
    first = export_image_variants(model, tmp_path / "a", wild, SIZE, quantize_cfg(64), OPSET)
    again = export_image_variants(model, tmp_path / "b", x[:64], SIZE, quantize_cfg(64), OPSET)
    for variant in (FP32, INT8_DYNAMIC, INT8_STATIC):
        assert first[variant].read_bytes() == again[variant].read_bytes(), variant
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "fp32.onnx",
        "int8_dynamic.onnx",
        "int8_static.onnx",
    ]


def test_calibration_images_of_the_wrong_size_fail_before_any_file(
    exported, tmp_path: Path
) -> None:
    model = exported["image_cnn_moe"]["model"]
    with pytest.raises(ValueError, match=r"expected \(n >= 1, 3, 32, 32\)"):
        export_image_variants(
            model, tmp_path / "out", np.zeros((4, 3, 16, 16), np.float32), SIZE, quantize_cfg(), 17
        )
    assert not (tmp_path / "out").exists()
