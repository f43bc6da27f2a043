"""Structured L1 pruning of the feed-forward widths: each feed-forward (every expert of every
MoE block, every dense block) keeps its `width` hidden units of largest L1 norm, and the model
is rebuilt with the narrower layers (a smaller `ffn_dim`), not masked, so the saved checkpoint
and the exported graph really are smaller. Iteratively, with a short fine-tune after each step.

Importance is the L1 norm of a unit's incoming weight row, as Li et al. 2017 ("Pruning Filters
for Efficient ConvNets") rank filters. Every feed-forward here reads a LayerNorm output
(pre-norm blocks), so all units of a layer see inputs on one scale and the row norm bounds the
unit's pre-activation alike for all of them; it needs no data, and it is the published
criterion, so the result is comparable. The outgoing column is left out: it matters too, but
it is scaled by how the residual stream weighs the block, and mixing the two norms would need a
weighting of our own invention.

Written by hand, not with a library: `torch.nn.utils.prune` only masks (it keeps
`weight_orig` and a `weight_mask` and multiplies them in a forward pre-hook), so nothing gets
smaller. Torch-Pruning removes channels physically, but finds what is coupled by running a
forward pass and walking the autograd graph (`grad_fn`) with a rule per op; DeepSpeed's MoE
layer feeds its experts through a token-to-slot `index_select`, reshapes, a `chunk` over the
experts and, with expert parallelism, a custom autograd Function (`_AllToAll`), none of which
are plain layers, and we have not checked what it would make of them. It is not needed either:
the only coupling of a hidden unit is inside the `nn.Sequential` that `_expert` builds (row of
the first Linear, its bias, column of the second), known by construction, and the rebuilt model
must also carry the smaller `ffn_dim` in its hyperparameters for checkpoints to load.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import Tensor, nn

from pipelines.compression.finetune import fine_tune
from pipelines.config import PruneConfig
from pipelines.datamodule import TabularDataModule
from pipelines.errors import PipelineError
from pipelines.lightning_module import RiskClassifier
from pipelines.models.moe import DenseBlock, MoEBlock, count_parameters

# shares within this of the target are the target: k * step in floating point (3 * 0.2 is
# 0.6000000000000001) must not add a step of its own
_SHARE_TOLERANCE = 1e-9


def pruned_width(original: int, removed_share: float) -> int:
    """The width left when `removed_share` of `original` units go: rounded to the nearest
    unit, a half up (keeping the unit is the cautious side), never below 1."""
    return max(1, math.floor(original * (1.0 - removed_share) + 0.5))


def prune_schedule(original: int, step: float, target: float) -> list[tuple[float, int]]:
    """(removed share, width) per step. Each step removes `step` more of the ORIGINAL width
    (step, 2*step, ...; not a share of what is left), the last step exactly `target`. A step
    whose rounded width would not shrink (a narrow layer) is merged into the one before, so
    each step prunes and the last is recorded at `target` whenever that removes any unit."""
    shares: list[float] = []
    k = 1
    while k * step < target - _SHARE_TOLERANCE:
        shares.append(k * step)
        k += 1
    shares.append(target)
    schedule: list[tuple[float, int]] = []
    current = original
    for share in shares:
        width = pruned_width(original, share)
        if width < current:
            schedule.append((share, width))
            current = width
        elif schedule and width == current:
            schedule[-1] = (share, width)  # the step reaching this width counts the larger share
    return schedule


def _feed_forwards(model: nn.Module) -> list[nn.Sequential]:
    """Every feed-forward built by `_expert`: each expert of each MoE block separately, and
    each dense block's. Found by block type, so other Linear-act-Linear stacks (the BiLSTM's
    attention scorer) are never mistaken for one."""
    ffns: list[nn.Sequential] = []
    for block in model.modules():
        if isinstance(block, MoEBlock):
            ffns.extend(block.experts)
        elif isinstance(block, DenseBlock):
            ffns.append(block.ffn)
    return ffns


def prunable(module: RiskClassifier) -> bool:
    """Whether the model has feed-forward widths to prune (the BiLSTM has none)."""
    return bool(_feed_forwards(module.model))


def _require_feed_forwards(module: RiskClassifier) -> list[nn.Sequential]:
    ffns = _feed_forwards(module.model)
    if not ffns:
        name = module.hparams["model"]["name"]
        raise PipelineError(
            f"model.name={name}: structured pruning needs feed-forward blocks (moe_mlp, "
            f"dense_mlp, moe_transformer, dense_transformer); {name} has none"
        )
    return ffns


def _kept_units(ffn: nn.Sequential, width: int) -> Tensor:
    """Indices of the `width` units of largest incoming-row L1 norm, in their original order
    (the order is arbitrary to the network, but keeping it makes a pruned layer a row subset
    of the original one, which is what anyone comparing the two expects). A stable sort breaks
    ties toward the lower index, so equal norms give the same choice on every run."""
    scores = ffn[0].weight.detach().abs().sum(dim=1)
    ranked = torch.argsort(scores, descending=True, stable=True)
    return torch.sort(ranked[:width]).values


def prune_ffn(module: RiskClassifier, width: int) -> RiskClassifier:
    """A new RiskClassifier whose hyperparameters say `ffn_dim=width`, each feed-forward
    holding its own `width` most important units of `module`'s; every other parameter and
    buffer copied as is. `module` is left untouched."""
    model_cfg: dict[str, Any] = dict(module.hparams["model"])
    current = int(model_cfg["ffn_dim"])
    ffns = _require_feed_forwards(module)
    if not 1 <= width < current:
        raise PipelineError(
            f"model.ffn_dim={current}: pruning needs a smaller width, from 1 to {current - 1}; "
            f"got {width}"
        )
    hparams = copy.deepcopy(dict(module.hparams))
    hparams["model"] = {**model_cfg, "ffn_dim": width}
    # building the new model draws initial weights that are overwritten at once; the
    # caller's RNG stream (dropout, expert sampling, a seeded run) should not notice
    with torch.random.fork_rng(devices=[]):
        pruned = RiskClassifier(**hparams)

    names = {id(m): prefix for prefix, m in module.model.named_modules()}
    state = {key: value.detach().clone() for key, value in module.model.state_dict().items()}
    for ffn in ffns:
        prefix = names[id(ffn)]
        keep = _kept_units(ffn, width).to(ffn[0].weight.device)
        # a hidden unit is its row (and bias) of the first Linear and its column of the second
        state[f"{prefix}.0.weight"] = state[f"{prefix}.0.weight"][keep]
        state[f"{prefix}.0.bias"] = state[f"{prefix}.0.bias"][keep]
        state[f"{prefix}.3.weight"] = state[f"{prefix}.3.weight"][:, keep]
    # strict: every other tensor must land in a slot of the same name and shape, so a layer
    # this code does not know about fails here instead of being silently re-initialised
    pruned.model.load_state_dict(state, strict=True)
    device = next(module.parameters()).device
    return pruned.to(device).train(module.training)


def iterative_prune(
    module: RiskClassifier,
    dm: TabularDataModule,
    cfg: PruneConfig,
    lr: float,
    seed: int,
    accelerator: str = "cpu",
    gradient_clip_val: float | None = 1.0,
) -> tuple[RiskClassifier, list[dict[str, Any]]]:
    """Prunes `module` along `prune_schedule`, fine-tuning for `cfg.finetune_epochs` at
    `lr * cfg.lr_factor` after each step (importance is re-ranked on the fine-tuned weights).
    Returns the final module in eval mode and one record per step."""
    _require_feed_forwards(module)  # before any fine-tune, not after the first step's work
    original = int(module.hparams["model"]["ffn_dim"])
    schedule = prune_schedule(original, cfg.step, cfg.target)
    if not schedule:
        raise PipelineError(
            f"quantize.prune.target={cfg.target}: removes no unit of model.ffn_dim={original} "
            "(the width rounds back to itself); raise the target or skip pruning"
        )
    history: list[dict[str, Any]] = []
    for share, width in schedule:
        # train mode by hand: Lightning 2.x fits modules in the mode it finds them in (it
        # only warns), and the checkpoint this starts from and each fine-tune come back in
        # eval mode, which would fine-tune without dropout and with inference routing
        module = prune_ffn(module, width).train()
        module, info = fine_tune(
            module,
            dm,
            epochs=cfg.finetune_epochs,
            lr=lr * cfg.lr_factor,
            seed=seed,
            accelerator=accelerator,
            gradient_clip_val=gradient_clip_val,
        )
        history.append(
            {
                "width": width,
                "removed_share": share,
                "parameters": count_parameters(module.model)["total"],
                "best_val_auprc": info["best_val_auprc"],
            }
        )
    return module.eval(), history
