"""Quantization-aware training (QAT): the trained model is fine-tuned with its linear layers
fake-quantized as ONNX Runtime will run them, INT8 weights and UINT8 activations, so the
weights learn to sit well on the INT8 grid, and is exported as an ONNX QDQ graph that carries
the learned scales and zero points.

Fake quantization is torch.ao.quantization's FakeQuantize with its observers (moving-average
min/max), not rounding of our own: the layers are swapped for FakeQuantLinear, which reuses the
Linear's own Parameter objects, so DeepSpeed's MoE layer still calls its experts as modules and
still finds its expert-parameter flags. Eager-mode `torch.ao.quantization.prepare_qat` is not
used: it places observers on module outputs and needs QuantStub/DeQuantStub at the edges of
every quantized region, which DeepSpeed's dispatch (index_select, chunks per expert) has no
place for. The graph-mode flows (FX, PT2E) would have to capture DeepSpeed's gate, whose
capacity is a Python int computed from the batch (pipelines/models/moe.py); not tried.

Same layer policy as the post-training INT8 (pipelines/quantization.py): MoE routers stay FP32
(INT8 gate logits flip expert choice), and so does the input projection with keep_input_fp32
(standardised raw features have outliers). The attention projections (query, key, value, out
of pipelines/models/sequence.SelfAttention) are Linear layers called as modules, so they are
fake-quantized like the feed-forwards.

What the TorchScript exporter emits (torch 2.13, opset 17): each `fake_quantize_per_tensor_
affine` becomes QuantizeLinear -> DequantizeLinear with a [1]-shaped scale and a UINT8 zero
point; each `fake_quantize_per_channel_affine` the same pair with axis=0 (opset >= 13; the quant
range must be (0, 255) or (-128, 127), which is why the weights use the full INT8 range).
Weights stay FP32 initializers in front of their QuantizeLinear, so the file is as large as the
FP32 one. `export_qat_onnx` therefore folds each constant QuantizeLinear into an INT8
initializer (evaluated with ONNX's reference implementation, so the folded graph computes
exactly what the unfolded one did), and gives each Gemm an INT32 bias behind a
DequantizeLinear (scale = input scale x weight scale, as ORT's own quantizer does): measured
with onnxruntime 1.31, ORT fuses DQ -> Gemm into its integer QGemm kernel only with such a
bias; with the FP32 bias the Gemm runs in float on dequantized values.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import onnx
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.ao.quantization import (
    FakeQuantize,
    MovingAverageMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver,
)

from pipelines.compression.finetune import FineTuning, fine_tune
from pipelines.compression.qdq_fold import fold_weights
from pipelines.datamodule import TabularDataModule
from pipelines.errors import PipelineError
from pipelines.lightning_module import RiskClassifier
from pipelines.models.moe import MoEBlock
from pipelines.onnx_export import export_onnx
from pipelines.schema.compression import QatConfig

ModuleT = TypeVar("ModuleT", bound=nn.Module)


def activation_fake_quant() -> FakeQuantize:
    """UINT8 affine over the full 0..255, the activation type of the static INT8 variant.
    torch's fbgemm default (reduce_range, 0..127) guards against a 16-bit overflow in
    non-VNNI x86 kernels; it would halve the resolution for every CPU to suit some."""
    return FakeQuantize(
        observer=MovingAverageMinMaxObserver,
        quant_min=0,
        quant_max=255,
        dtype=torch.quint8,
        qscheme=torch.per_tensor_affine,
        reduce_range=False,
    )


def weight_fake_quant(per_channel: bool) -> FakeQuantize:
    """INT8 symmetric (zero point 0, as ORT's integer GEMMs expect of weights), one scale per
    output row or one for the tensor. The moving average lets the range follow the weights
    as they are fine-tuned, as torch's default QAT configuration does."""
    if per_channel:
        return FakeQuantize(
            observer=MovingAveragePerChannelMinMaxObserver,
            quant_min=-128,
            quant_max=127,
            dtype=torch.qint8,
            qscheme=torch.per_channel_symmetric,
            ch_axis=0,
        )
    return FakeQuantize(
        observer=MovingAverageMinMaxObserver,
        quant_min=-128,
        quant_max=127,
        dtype=torch.qint8,
        qscheme=torch.per_tensor_symmetric,
    )


class FakeQuantLinear(nn.Module):
    """A Linear whose input and weight pass through FakeQuantize: forward and backward in
    float, values on the INT8 grid, gradients by the straight-through estimator.

    The observers update in training-mode forwards only, so validation batches neither move
    the ranges nor leak into them; `calibrating = False` (freeze_observers) stops them for
    good. The check is made in each forward because Lightning switches modes by assigning
    `.training`, which an override of train() would miss (as MoEBlock notes)."""

    def __init__(self, linear: nn.Linear, per_channel: bool) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        # the very Parameter objects: the optimizer, DeepSpeed's expert flags (allreduce,
        # group_name) and the state_dict keys all stay as they were
        self.register_parameter("weight", linear.weight)
        self.register_parameter("bias", linear.bias)
        self.input_fake_quant = activation_fake_quant()
        self.weight_fake_quant = weight_fake_quant(per_channel)
        self.calibrating = True
        self.to(linear.weight.device)

    def forward(self, x: Tensor) -> Tensor:
        self._observe(self.training and self.calibrating)
        return F.linear(self.input_fake_quant(x), self.weight_fake_quant(self.weight), self.bias)

    def _observe(self, on: bool) -> None:
        for fake_quant in (self.input_fake_quant, self.weight_fake_quant):
            # read from the buffer, not mirrored in Python: a state_dict load sets it too
            if bool(fake_quant.observer_enabled[0]) != on:
                fake_quant.enable_observer(on)

    def calibrated(self) -> bool:
        return all(
            fq.activation_post_process.min_val.numel() > 0
            and bool(torch.isfinite(fq.activation_post_process.min_val).all())
            for fq in (self.input_fake_quant, self.weight_fake_quant)
        )

    def to_float(self) -> nn.Linear:
        linear = nn.Linear(
            self.in_features, self.out_features, bias=self.bias is not None, device="meta"
        )
        linear.weight = self.weight
        linear.bias = self.bias
        return linear

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


def _network(model: nn.Module) -> nn.Module:
    return model.model if isinstance(model, RiskClassifier) else model


def float_linears(model: nn.Module, keep_input_fp32: bool) -> dict[str, str]:
    """The Linear layers QAT leaves in FP32, by name, with the reason."""
    net = _network(model)
    names = {id(module): name for name, module in net.named_modules()}
    kept: dict[str, str] = {}
    for module in net.modules():
        if isinstance(module, MoEBlock):
            kept[names[id(module.gate.wg)]] = "MoE router"
    projection = input_projection(net)
    if keep_input_fp32 and projection is not None:
        kept[names[id(projection)]] = "input projection (keep_input_fp32)"
    return kept


def input_projection(model: nn.Module) -> nn.Module | None:
    """The first layer over the standardised features: `inp[0]` of the MLP and Transformer
    classifiers (the BiLSTM reads them with its LSTM, which is not quantized). It is the layer
    pipelines.quantization.input_projection_nodes finds in the exported graph."""
    inp = getattr(_network(model), "inp", None)
    first = inp[0] if isinstance(inp, nn.Sequential) and len(inp) else None
    return first if isinstance(first, nn.Linear | FakeQuantLinear) else None


def _swap_modules(model: nn.Module, replace: Callable[[str, nn.Module], nn.Module | None]) -> None:
    """Replace children in place: `replace(name, child)` returns the new module or None."""
    for parent_name, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            name = f"{parent_name}.{child_name}" if parent_name else child_name
            new = replace(name, child)
            if new is not None:
                setattr(parent, child_name, new)


def prepare_qat(model: ModuleT, *, keep_input_fp32: bool, per_channel: bool) -> ModuleT:
    """Swaps, IN PLACE, every nn.Linear of `model` (a RiskClassifier or its network) for a
    FakeQuantLinear sharing its parameters, except those float_linears names; returns
    `model`. Layers already swapped are left alone, so preparing twice changes nothing."""
    net = _network(model)
    kept = float_linears(net, keep_input_fp32)

    def replace(name: str, child: nn.Module) -> nn.Module | None:
        if isinstance(child, nn.Linear) and name not in kept:
            return FakeQuantLinear(child, per_channel)
        return None

    _swap_modules(net, replace)
    return model


def fake_quant_layers(model: nn.Module) -> dict[str, FakeQuantLinear]:
    return {
        name: module
        for name, module in _network(model).named_modules()
        if isinstance(module, FakeQuantLinear)
    }


def freeze_observers(model: nn.Module) -> None:
    """Fixes every scale and zero point as they are; fake quantization stays on."""
    for layer in fake_quant_layers(model).values():
        layer.calibrating = False
        layer._observe(False)


def qat_fine_tune(
    module: RiskClassifier,
    dm: TabularDataModule,
    cfg: QatConfig,
    tuning: FineTuning,
    keep_input_fp32: bool,
) -> tuple[RiskClassifier, dict[str, Any]]:
    """Prepares `module` in place, fine-tunes it for cfg.finetune_epochs at lr x
    cfg.lr_factor (best validation epoch kept, validation run on the fake-quantized model, so
    the choice is made on INT8 behaviour) and freezes the observers. Returns the module,
    still fake-quantized: export it with export_qat_onnx, save it with strip_fake_quant."""
    prepare_qat(module.model, keep_input_fp32=keep_input_fp32, per_channel=cfg.per_channel)
    module, info = fine_tune(
        module,
        dm,
        tuning.scaled(cfg.lr_factor),
        epochs=cfg.finetune_epochs,
        label="QAT",
        # the start has no calibrated ranges: only fake-quant-trained weights may come back
        keep_start_if_best=False,
    )
    freeze_observers(module.model)
    return module, {
        **info,
        "per_channel": cfg.per_channel,
        "fake_quant_layers": len(fake_quant_layers(module.model)),
        "float_layers": float_linears(module.model, keep_input_fp32),
    }


def strip_fake_quant(model: ModuleT) -> ModuleT:
    """A copy of `model` with plain nn.Linear layers holding the fine-tuned weights: the float
    model, which checkpoints as a plain RiskClassifier (state_dict keys as a fresh one's).
    `model` itself is unchanged."""
    plain = copy.deepcopy(model)
    # deepcopy makes new Parameters without their attributes; DeepSpeed's expert flags
    # (allreduce, group_name) decide the optimizer's MoE parameter groups in a later fit
    originals = dict(model.named_parameters())
    for name, param in plain.named_parameters():
        param.__dict__.update(originals[name].__dict__)
    _swap_modules(
        plain,
        lambda _name, child: child.to_float() if isinstance(child, FakeQuantLinear) else None,
    )
    return plain


def export_qat_onnx(
    model: nn.Module,
    sample_shape: tuple[int, ...],
    path: Path,
    opset: int,
    fold: bool = True,
) -> dict[str, int]:
    """The fake-quantized model (observers frozen here) as an ONNX QDQ graph with INT8 weight
    initializers and INT32 Gemm biases (module docstring); the TorchScript exporter with a
    dynamic batch axis, as export_onnx. Returns how many weights and biases were folded.

    `fold=False` writes the exporter's graph as it is (FP32 weights, each behind its own
    QuantizeLinear): PyTorch's fake quantization op for op, which runs in float in ORT. The
    folded graph differs from it by the INT32 bias rounding only (at most half of
    input scale x weight scale per output)."""
    layers = fake_quant_layers(model)
    if not layers:
        raise PipelineError("export_qat_onnx: the model has no fake-quantized layers")
    if not all(layer.calibrated() for layer in layers.values()):
        raise PipelineError(
            "export_qat_onnx: fake-quant observers have seen no data (run qat_fine_tune)"
        )
    if opset < 13:
        raise PipelineError(f"export_qat_onnx: per-axis QDQ needs opset >= 13, got {opset}")
    freeze_observers(model)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "qdq.onnx"
        export_onnx(model, sample_shape, raw, opset)
        proto = onnx.load(str(raw))
    folded = fold_weights(proto) if fold else {}
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return folded
