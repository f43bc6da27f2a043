"""The model families, each stated once: its builder (the `_target_` its conf/model/<name>.yaml
names), whether it is MoE, its dense twin, the modalities it reads, whether it reads an
entity's history, and its own config invariants. Every question about a model's family (the
config checks, distillation, pruning, the modality checks, the builders) is answered here.

A `_target_` that is no family's builder is a user's own model class (the contract is in
pipelines/models/build.py); it is imported from PYTHONPATH when the config loads, so a typo
in the class or in one of its `model.args` fails then, naming the key.

No torch at import: pipelines.config reads these facts on every config load.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.errors import PipelineError

if TYPE_CHECKING:
    from pipelines.schema.model import ModelConfig


def _heads_divide_hidden(model: ModelConfig) -> None:
    if model.head_dim is None and model.hidden_dim % model.num_heads:
        # without an explicit head_dim, hidden_dim is split into num_heads equal parts
        raise PipelineError(
            f"config keys 'model.hidden_dim' = {model.hidden_dim}, 'model.num_heads' "
            f"= {model.num_heads}: {model.name} expects hidden_dim divisible by num_heads "
            "(or model.head_dim set)"
        )


def _even_hidden(model: ModelConfig) -> None:
    if model.hidden_dim % 2:
        # hidden_dim is both directions together, half each
        raise PipelineError(
            f"config key 'model.hidden_dim' = {model.hidden_dim}: bilstm_attention "
            "expects an even number (half per LSTM direction)"
        )


def _quarter_hidden(model: ModelConfig) -> None:
    if model.hidden_dim % 4:
        # four Inception branches of hidden_dim / 4 filters each
        raise PipelineError(
            f"config key 'model.hidden_dim' = {model.hidden_dim}: {model.name} expects a "
            "multiple of 4 (one quarter per Inception branch)"
        )


@dataclass(frozen=True)
class ModelFamily:
    name: str
    # the builder conf/model/<name>.yaml names as `_target_`; for a tabular family it is
    # called (n_features, ModelConfig, mean, std), for an image one (num_classes, image_size,
    # ModelConfig), for a series one (num_classes, channels, window length, ModelConfig).
    # The text modality puts the Transformer families' encoder behind its token input layer
    # (pipelines.models.text.TextClassifier)
    target: str
    modalities: tuple[str, ...]
    moe: bool = False
    dense_twin: str | None = None  # an MoE family's dense model with the same active width
    sequence: bool = False  # reads an entity's history of rows (data.schema.sequence_key)
    check: Callable[[ModelConfig], None] | None = None  # raises PipelineError naming the key


_MLP = "pipelines.models.moe.TabularClassifier"
_TRANSFORMER = "pipelines.models.sequence.TransformerClassifier"
_BILSTM = "pipelines.models.sequence.BiLSTMAttentionClassifier"
_CNN = "pipelines.models.image.ImageCNNClassifier"
_PATCH = "pipelines.models.image.ImagePatchClassifier"
_INCEPTION = "pipelines.models.timeseries.InceptionClassifier"
_SERIES_PATCH = "pipelines.models.timeseries.PatchClassifier"


def _series_twins(
    stem: str, target: str, check: Callable[[ModelConfig], None]
) -> tuple[ModelFamily, ModelFamily]:
    """A series family `<stem>_moe` and its dense twin `<stem>_dense` (one builder)."""
    dense = f"{stem}_dense"
    return (
        ModelFamily(f"{stem}_moe", target, ("timeseries",), moe=True, dense_twin=dense,
                    check=check),
        ModelFamily(dense, target, ("timeseries",), check=check),
    )  # fmt: skip


# in the order error messages list them
FAMILIES: dict[str, ModelFamily] = {
    family.name: family
    for family in (
        ModelFamily("moe_mlp", _MLP, ("tabular",), moe=True, dense_twin="dense_mlp"),
        ModelFamily("dense_mlp", _MLP, ("tabular",)),
        ModelFamily(
            "moe_transformer",
            _TRANSFORMER,
            ("tabular", "text"),
            moe=True,
            dense_twin="dense_transformer",
            sequence=True,
            check=_heads_divide_hidden,
        ),
        ModelFamily(
            "dense_transformer",
            _TRANSFORMER,
            ("tabular", "text"),
            sequence=True,
            check=_heads_divide_hidden,
        ),
        ModelFamily("bilstm_attention", _BILSTM, ("tabular",), sequence=True, check=_even_hidden),
        ModelFamily("image_cnn_moe", _CNN, ("image",), moe=True, dense_twin="image_cnn_dense"),
        ModelFamily("image_cnn_dense", _CNN, ("image",)),
        ModelFamily(
            "image_patch_moe", _PATCH, ("image",), moe=True, dense_twin="image_patch_dense"
        ),
        ModelFamily("image_patch_dense", _PATCH, ("image",)),
        *_series_twins("ts_inception", _INCEPTION, _quarter_hidden),
        *_series_twins("ts_patch", _SERIES_PATCH, _heads_divide_hidden),
    )
}
BUILDERS = frozenset(family.target for family in FAMILIES.values())
# a user's own model reads the feature vector of one row: tables only
USER_MODEL_MODALITIES = ("tabular",)
# the student distillation trains for a user's model: a dense MLP reads the same features
USER_MODEL_STUDENT = "dense_mlp"


def names_for(modality: str) -> tuple[str, ...]:
    """The families a modality accepts, in FAMILIES order."""
    return tuple(name for name, family in FAMILIES.items() if modality in family.modalities)


def family_of(model: ModelConfig) -> ModelFamily | None:
    """The model's family; None for a user's own model class."""
    return FAMILIES.get(model.name) if model._target_ in BUILDERS else None


def accepts(modality: str, model: ModelConfig) -> bool:
    family = family_of(model)
    modalities = family.modalities if family is not None else USER_MODEL_MODALITIES
    return modality in modalities


def is_moe(model: ModelConfig) -> bool:
    family = family_of(model)
    return family is not None and family.moe


def is_sequence(model: ModelConfig) -> bool:
    family = family_of(model)
    return family is not None and family.sequence


def student_name(model: ModelConfig) -> str:
    """The family distillation trains as the student: an MoE family's dense twin, a dense
    family itself, a user's model a dense MLP over the same features."""
    family = family_of(model)
    if family is None:
        return USER_MODEL_STUDENT
    return family.dense_twin or family.name


def matched_dense(cfg: ModelConfig) -> ModelConfig:
    """The dense counterpart of an MoE config with the same parameters active per token: one
    feed-forward of top_k x the expert width in place of the routed experts."""
    family = family_of(cfg)
    if family is None or family.dense_twin is None:
        raise ValueError(f"{cfg.name} is not an MoE model")
    return dataclasses.replace(
        cfg,
        _target_=FAMILIES[family.dense_twin].target,
        name=family.dense_twin,
        ffn_dim=cfg.ffn_dim * cfg.top_k,
    )


def build_for(modality: str, cfg: ModelConfig, *args: Any) -> Any:
    """The model of `cfg`'s family, built by its builder from `args` (an image family:
    num_classes, image_size; a series one: num_classes, channels, window length) and `cfg`;
    ValueError when the family does not read `modality`."""
    family = family_of(cfg)
    if family is None or modality not in family.modalities:
        raise ValueError(
            f"model.name = {cfg.name!r}: expected one of {', '.join(names_for(modality))}"
        )
    return import_target(family.target)(*args, cfg)


def check_family(model: ModelConfig) -> None:
    """The family's own invariants (a user's model: none beyond its arguments)."""
    family = family_of(model)
    if family is not None and family.check is not None:
        family.check(model)


def import_target(target: str) -> Any:
    """The object a dotted `_target_` names (module path, then attribute)."""
    module_name, _, attribute = target.rpartition(".")
    if not module_name:
        raise ImportError(f"{target!r} is not a dotted path (module.Class)")
    return getattr(importlib.import_module(module_name), attribute)


def snake_case(name: str) -> str:
    """TinyNet -> tiny_net: the model.name a user's class gets when none is given."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def resolve(model: ModelConfig) -> None:
    """Settle which model `model` is, in place (ModelConfig.__post_init__ calls it).

    A family's builder as `_target_`: `model.name` picks the family (so `model.name=dense_mlp`
    alone switches families) and `_target_` becomes that family's builder. Any other
    `_target_`: a user's class, imported and its `model.args` checked against its signature;
    `model.name` left at a family's name becomes the class name in snake case."""
    if model._target_ in BUILDERS:
        family = FAMILIES.get(model.name)
        if family is None:
            raise PipelineError(
                f"config key 'model.name' = {model.name!r}: expected one of {', '.join(FAMILIES)}"
            )
        model._target_ = family.target
        if model.args:
            raise PipelineError(
                f"config key 'model.args' = {model.args!r}: {model.name} takes no args (its "
                "settings are model.<key>); model.args is for a model._target_ of your own"
            )
        return
    cls = _user_class(model._target_)
    if model.name in FAMILIES:
        model.name = snake_case(cls.__name__)
    _check_user_args(model._target_, cls, model.args)


def _user_class(target: str) -> type:
    try:
        cls = import_target(target)
    except (ImportError, AttributeError, ValueError) as err:
        raise PipelineError(
            f"config key 'model._target_' = {target!r}: cannot import it ({err}); expected "
            f"one of the families' builders ({', '.join(sorted(BUILDERS))}) or a "
            "torch.nn.Module class of your own importable from PYTHONPATH"
        ) from None
    if not inspect.isclass(cls):
        raise PipelineError(
            f"config key 'model._target_' = {target!r}: expected a class, got {type(cls).__name__}"
        )
    return cls


_PLAIN_TYPES: dict[Any, tuple[type, ...]] = {
    int: (int,),
    float: (int, float),
    bool: (bool,),
    str: (str,),
}


def _check_user_args(target: str, cls: type, args: dict[str, Any]) -> None:
    parameters = inspect.signature(cls).parameters
    any_keyword = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    named = [
        name
        for name, p in parameters.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    if "n_features" not in named and not any_keyword:
        raise PipelineError(
            f"config key 'model._target_' = {target!r}: expected a class whose __init__ takes "
            "n_features= (the width of the feature vector)"
        )
    for key in args:
        if key == "n_features":
            raise PipelineError(
                "config key 'model.args.n_features': set by the pipeline (the number of "
                "features), not by config"
            )
        if key not in named and not any_keyword:
            close = difflib.get_close_matches(key, named, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}?" if close else f"its arguments: {', '.join(named)}"
            raise PipelineError(
                f"config key 'model.args.{key}' is not an argument of {target}: {hint}"
            )
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # noqa: BLE001 - unresolvable annotations: nothing to check types by
        hints = {}
    for key, value in args.items():
        allowed = _PLAIN_TYPES.get(hints.get(key))
        wrong_bool = isinstance(value, bool) and hints.get(key) in (int, float)
        if allowed is not None and (not isinstance(value, allowed) or wrong_bool):
            raise PipelineError(
                f"config key 'model.args.{key}' = {value!r}: {target} expects {hints[key].__name__}"
            )
    missing = [
        name
        for name in named
        if name not in ("self", "n_features")
        and name not in args
        and parameters[name].default is inspect.Parameter.empty
    ]
    if missing:
        raise PipelineError(
            f"config key 'model.args.{missing[0]}' is not set: {target} requires it"
        )
