"""The image classifiers (a conv backbone with an MoE head, a patch Transformer with MoE
feed-forwards, and their dense twins): one row of class scores per image whatever the batch
around it, the MoE's load-balancing loss and expert counts, dense twins with the MoE's active
parameters, and an ONNX graph with a dynamic batch axis that matches PyTorch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from pipelines.models.families import matched_dense
from pipelines.models.image import IMAGES, build_image_model, export_image_onnx
from pipelines.models.moe import count_parameters
from pipelines.runtime import session
from pipelines.schema.model import ModelConfig

SIZE, CLASSES, HIDDEN, EXPERTS = 32, 3, 32, 4
MOE = ["image_cnn_moe", "image_patch_moe"]
ALL = [*MOE, "image_cnn_dense", "image_patch_dense"]


def image_cfg(name: str) -> ModelConfig:
    cfg = ModelConfig(
        name=name.replace("dense", "moe"),
        hidden_dim=HIDDEN,
        ffn_dim=24,
        num_blocks=2,
        num_experts=EXPERTS,
        num_heads=2,
        seq_len=16,  # a 4 x 4 grid of 8 px patches
    )
    return matched_dense(cfg) if "dense" in name else cfg


def image_model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_image_model(CLASSES, SIZE, image_cfg(name)).eval()


def images(rows: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(rows, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", ALL)
def test_each_image_gets_one_row_of_class_scores_whatever_its_batch(name: str) -> None:
    model = image_model(name)
    batch = images(6)
    with torch.no_grad():
        together = model(batch)
        alone = torch.cat([model(batch[i : i + 1]) for i in range(6)])
    assert together.shape == (6, CLASSES) and together.dtype == torch.float32
    # eval-mode routing drops no token at these capacities and BatchNorm uses its running
    # statistics: an image's score does not depend on the images batched with it
    assert torch.allclose(together, alone, atol=1e-5)


@pytest.mark.parametrize(
    ("name", "tokens_per_image"), [("image_cnn_moe", 1), ("image_patch_moe", 17)]
)
def test_the_moe_models_route_tokens_and_return_a_load_balancing_loss(
    name: str, tokens_per_image: int
) -> None:
    model = image_model(name).train()
    logits, aux_loss, counts = model.forward_with_aux(images(5))
    assert logits.shape == (5, CLASSES)
    assert aux_loss.item() > 0 and aux_loss.requires_grad
    # one count vector per MoE block; every token (one per image for the CNN head, [CLS]
    # and 16 patches for the Transformer) goes to its top-2 experts
    assert len(counts) == 2
    for per_expert in counts:
        assert per_expert.shape == (EXPERTS,)
        assert int(per_expert.sum()) == 2 * 5 * tokens_per_image
    # the load-balancing loss trains the routers
    aux_loss.backward()
    routers = [p for n, p in model.named_parameters() if "gate.wg" in n]
    assert len(routers) == 2 and all(p.grad is not None and p.grad.abs().sum() > 0 for p in routers)


@pytest.mark.parametrize("name", ["image_cnn_dense", "image_patch_dense"])
def test_the_dense_twins_have_no_routing(name: str) -> None:
    _, aux_loss, counts = image_model(name).train().forward_with_aux(images(4))
    assert aux_loss.item() == 0 and counts == []


@pytest.mark.parametrize("name", MOE)
def test_the_dense_twin_has_the_moe_model_active_parameters_per_token(name: str) -> None:
    moe = image_model(name)
    dense = image_model(name.replace("moe", "dense"))
    assert image_cfg(name.replace("moe", "dense")).ffn_dim == 2 * image_cfg(name).ffn_dim
    moe_active = count_parameters(moe)["active_per_row"]
    routers = sum(p.numel() for n, p in moe.named_parameters() if "gate.wg" in n)
    # the same weights per token; each of the top-2 experts adds its own output bias, which
    # the one double-width dense feed-forward has once: (top_k - 1) x hidden per block
    output_biases = 2 * (2 - 1) * HIDDEN
    assert count_parameters(dense)["total"] == moe_active - routers - output_biases
    assert count_parameters(moe)["total"] > moe_active  # the other experts wait their turn


@pytest.mark.parametrize("name", ALL)
def test_the_onnx_graph_takes_any_batch_and_matches_pytorch(name: str, tmp_path: Path) -> None:
    model = image_model(name)
    path = tmp_path / "image.onnx"
    differences = export_image_onnx(model, path, opset=17, size=SIZE)
    assert set(differences) == {1, 3, 7} and max(differences.values()) <= 1e-4
    (graph_input,) = onnx.load(str(path)).graph.input
    dims = graph_input.type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [3, SIZE, SIZE]
    # a batch size it was neither traced nor checked at
    batch = images(11, seed=5)
    (probabilities,) = session(path, cpu_only=True).run(None, {IMAGES: batch.numpy()})
    with torch.no_grad():
        expected = torch.softmax(model(batch), dim=-1).numpy()
    assert probabilities.shape == (11, CLASSES)
    np.testing.assert_allclose(probabilities, expected, atol=1e-4)


def test_a_patch_grid_that_does_not_tile_the_image_names_the_key() -> None:
    with pytest.raises(ValueError, match=r"model\.seq_len = 15"):
        build_image_model(CLASSES, SIZE, ModelConfig(name="image_patch_moe", seq_len=15))
    with pytest.raises(ValueError, match=r"model\.seq_len = 25"):
        build_image_model(CLASSES, SIZE, ModelConfig(name="image_patch_moe", seq_len=25))


def test_the_image_moe_models_are_moe_models_to_the_rest_of_the_pipeline() -> None:
    for name in MOE:
        cfg = ModelConfig(name=name)
        assert cfg.is_moe and not matched_dense(cfg).is_moe
