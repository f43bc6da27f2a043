"""Structured L1 pruning of the feed-forward widths and the attention heads: each feed-forward
(every expert of every MoE block, every dense block) keeps its `width` hidden units of largest
L1 norm, each self-attention layer of the Transformers its `heads` heads of largest L1 norm,
and the model is rebuilt with the narrower layers (a smaller `ffn_dim`, fewer `num_heads` of
the same `head_dim`), not masked, so the saved checkpoint and the exported graph really are
smaller. Iteratively, with a short fine-tune after each step.

Importance is the L1 norm of a unit's incoming weight row, as Li et al. 2017 ("Pruning Filters
for Efficient ConvNets") rank filters. Every feed-forward here reads a LayerNorm output
(pre-norm blocks), so all units of a layer see inputs on one scale and the row norm bounds the
unit's pre-activation alike for all of them; it needs no data, and it is the published
criterion, so the result is comparable. A head is scored the same way, by the L1 norm of its
rows in the query, key and value projections together (its incoming weights; Michel et al.
2019 rank heads by a gradient-based importance instead, which needs labelled batches and
backward passes; the weight norm keeps both kinds of pruning data-free and on one criterion,
and the fine-tune after each step recovers what it misjudges). The outgoing column is left
out: it matters too, but it is scaled by how the residual stream weighs the block, and mixing
the two norms would need a weighting of our own invention.

Written by hand, not with a library: `torch.nn.utils.prune` only masks (it keeps
`weight_orig` and a `weight_mask` and multiplies them in a forward pre-hook), so nothing gets
smaller. Torch-Pruning removes channels physically, but finds what is coupled by running a
forward pass and walking the autograd graph (`grad_fn`) with a rule per op; DeepSpeed's MoE
layer feeds its experts through a token-to-slot `index_select`, reshapes, a `chunk` over the
experts and, with expert parallelism, a custom autograd Function (`_AllToAll`), none of which
are plain layers, and we have not checked what it would make of them. It is not needed either:
the only coupling of a hidden unit is inside the `nn.Sequential` that `_expert` builds (row of
the first Linear, its bias, column of the second), known by construction, and the rebuilt model
must also carry the smaller `ffn_dim` in its hyperparameters for checkpoints to load. The same
holds for a head: its rows of the query, key and value Linears and its columns of the output
Linear of pipelines.models.sequence.SelfAttention, nothing else.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import Tensor, nn

from pipelines.compression.finetune import FineTuning, fine_tune
from pipelines.datamodule import TabularDataModule
from pipelines.errors import PipelineError
from pipelines.lightning_module import RiskClassifier
from pipelines.models.moe import DenseBlock, MoEBlock, count_parameters
from pipelines.models.sequence import SelfAttention
from pipelines.schema.compression import PruneConfig

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


def _attentions(model: nn.Module) -> list[SelfAttention]:
    return [block for block in model.modules() if isinstance(block, SelfAttention)]


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


def _largest_l1(scores: Tensor, keep: int) -> Tensor:
    """Indices of the `keep` largest scores, in their original order (the order is arbitrary
    to the network, but keeping it makes a pruned layer a row subset of the original one,
    which is what anyone comparing the two expects). A stable sort breaks ties toward the
    lower index, so equal norms give the same choice on every run."""
    ranked = torch.argsort(scores, descending=True, stable=True)
    return torch.sort(ranked[:keep]).values


def _kept_units(ffn: nn.Sequential, width: int) -> Tensor:
    """The `width` hidden units of largest incoming-row L1 norm."""
    return _largest_l1(ffn[0].weight.detach().abs().sum(dim=1), width)


def _kept_heads(attention: SelfAttention, heads: int) -> Tensor:
    """The `heads` heads of largest L1 norm over their query, key and value rows."""
    rows = torch.stack([attention.query.weight, attention.key.weight, attention.value.weight])
    per_head = rows.detach().abs().unflatten(1, (attention.num_heads, attention.head_dim))
    return _largest_l1(per_head.sum(dim=(0, 2, 3)), heads)


def _head_rows(heads: Tensor, head_dim: int) -> Tensor:
    """The rows of a (num_heads * head_dim)-wide projection that belong to `heads`."""
    return (heads[:, None] * head_dim + torch.arange(head_dim, device=heads.device)).flatten()


def _check_smaller(key: str, current: int, new: int) -> None:
    if not 1 <= new < current:
        raise PipelineError(
            f"model.{key}={current}: pruning needs a smaller {key}, from 1 to {current - 1}; "
            f"got {new}"
        )


def prune_model(
    module: RiskClassifier, width: int | None = None, heads: int | None = None
) -> RiskClassifier:
    """A new RiskClassifier with `ffn_dim=width` (each feed-forward holding its own `width`
    most important units of `module`'s) and `num_heads=heads` (each attention layer its own
    `heads` most important heads, each as wide as before); None leaves that dimension as it
    is. Every other parameter and buffer is copied as is; `module` is left untouched."""
    model_cfg: dict[str, Any] = dict(module.hparams["model"])
    updates: dict[str, Any] = {}
    ffns = _require_feed_forwards(module)
    if width is not None:
        _check_smaller("ffn_dim", int(model_cfg["ffn_dim"]), width)
        updates["ffn_dim"] = width
    attentions = _attentions(module.model)
    if heads is not None:
        if not attentions:
            raise PipelineError(
                f"model.name={model_cfg['name']}: has no attention heads to prune "
                "(quantize.prune.heads applies to moe_transformer and dense_transformer)"
            )
        _check_smaller("num_heads", attentions[0].num_heads, heads)
        # the remaining heads keep their width, so it must be stated once hidden_dim /
        # num_heads no longer gives it
        updates.update(num_heads=heads, head_dim=attentions[0].head_dim)
    if not updates:
        raise PipelineError("prune_model: give a feed-forward width, a head count, or both")
    hparams = copy.deepcopy(dict(module.hparams))
    hparams["model"] = {**model_cfg, **updates}
    # building the new model draws initial weights that are overwritten at once; the
    # caller's RNG stream (dropout, expert sampling, a seeded run) should not notice
    with torch.random.fork_rng(devices=[]):
        pruned = RiskClassifier(**hparams)

    names = {id(m): prefix for prefix, m in module.model.named_modules()}
    state = {key: value.detach().clone() for key, value in module.model.state_dict().items()}
    if width is not None:
        for ffn in ffns:
            prefix = names[id(ffn)]
            keep = _kept_units(ffn, width).to(ffn[0].weight.device)
            # a hidden unit is its row (and bias) of the first Linear and its column of the
            # second
            state[f"{prefix}.0.weight"] = state[f"{prefix}.0.weight"][keep]
            state[f"{prefix}.0.bias"] = state[f"{prefix}.0.bias"][keep]
            state[f"{prefix}.3.weight"] = state[f"{prefix}.3.weight"][:, keep]
    if heads is not None:
        for attention in attentions:
            prefix = names[id(attention)]
            rows = _head_rows(_kept_heads(attention, heads), attention.head_dim)
            rows = rows.to(attention.query.weight.device)
            for projection in ("query", "key", "value"):
                state[f"{prefix}.{projection}.weight"] = state[f"{prefix}.{projection}.weight"][
                    rows
                ]
                state[f"{prefix}.{projection}.bias"] = state[f"{prefix}.{projection}.bias"][rows]
            state[f"{prefix}.out.weight"] = state[f"{prefix}.out.weight"][:, rows]
    # strict: every other tensor must land in a slot of the same name and shape, so a layer
    # this code does not know about fails here instead of being silently re-initialised
    pruned.model.load_state_dict(state, strict=True)
    device = next(module.parameters()).device
    return pruned.to(device).train(module.training)


def prune_ffn(module: RiskClassifier, width: int) -> RiskClassifier:
    """prune_model for the feed-forward widths alone."""
    return prune_model(module, width=width)


def iterative_prune(
    module: RiskClassifier,
    dm: TabularDataModule,
    cfg: PruneConfig,
    tuning: FineTuning,
) -> tuple[RiskClassifier, list[dict[str, Any]]]:
    """Prunes `module` along `prune_schedule`, fine-tuning for `cfg.finetune_epochs` at
    `tuning.lr * cfg.lr_factor` after each step (importance is re-ranked on the fine-tuned
    weights).
    With `cfg.heads` and a model that has attention, each step also removes the same share of
    the original heads (rounded as widths are, never below one head), so the attention layers
    shrink in step with the feed-forwards. Returns the final module in eval mode and one
    record per step."""
    _require_feed_forwards(module)  # before any fine-tune, not after the first step's work
    original = int(module.hparams["model"]["ffn_dim"])
    schedule = prune_schedule(original, cfg.step, cfg.target)
    if not schedule:
        raise PipelineError(
            f"quantize.prune.target={cfg.target}: removes no unit of model.ffn_dim={original} "
            "(the width rounds back to itself); raise the target or skip pruning"
        )
    attentions = _attentions(module.model)
    original_heads = attentions[0].num_heads if attentions and cfg.heads else None
    history: list[dict[str, Any]] = []
    for number, (share, width) in enumerate(schedule, start=1):
        heads = None
        if original_heads is not None:
            target_heads = pruned_width(original_heads, share)
            current_heads = _attentions(module.model)[0].num_heads
            heads = target_heads if target_heads < current_heads else None
        # train mode by hand: Lightning 2.x fits modules in the mode it finds them in (it
        # only warns), and the checkpoint this starts from and each fine-tune come back in
        # eval mode, which would fine-tune without dropout and with inference routing
        module = prune_model(module, width=width, heads=heads).train()
        module, info = fine_tune(
            module,
            dm,
            tuning.scaled(cfg.lr_factor),
            epochs=cfg.finetune_epochs,
            label=f"pruning step {number}/{len(schedule)} (ffn_dim {width})",
        )
        history.append(
            {
                "width": width,
                **({"heads": _attentions(module.model)[0].num_heads} if attentions else {}),
                "removed_share": share,
                "parameters": count_parameters(module.model)["total"],
                "best_val_auprc": info["best_val_auprc"],
            }
        )
    return module.eval(), history
