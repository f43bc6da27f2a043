"""Structured configs: the schema that every composed config is validated against.

A typo in a key or a value of the wrong type fails here, before any stage does work, with a
message naming the key and what was expected (Ludwig-style).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pipelines.errors import PipelineError
from pipelines.lightning_options import split_extras
from pipelines.modalities.registry import modality
from pipelines.modalities.tabular import config as tabular
from pipelines.models import families
from pipelines.schema import compression, data, evaluation, model, training
from pipelines.schema.compression import (
    QuantizeConfig,
)
from pipelines.schema.data import (
    DataConfig,
)
from pipelines.schema.evaluation import (
    BASELINES,
    EvaluateConfig,
    ExportConfig,
)
from pipelines.schema.fields import Bounds, bounded
from pipelines.schema.model import (
    ModelConfig,
)
from pipelines.schema.training import (
    CallbacksConfig,
    LoggerConfig,
    StrategyConfig,
    TrainConfig,
    TrainerConfig,
)


@dataclass
class PipelineConfig:
    data: DataConfig = field(default_factory=DataConfig)
    """The data set: where rows come from, their schema and split, and each modality's profile,
    clean and augment settings (conf/data/)."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """The model: a family from conf/model/ (MoE or its dense twin per modality) or a class of your
    own."""
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    """How training is distributed (conf/strategy/: auto, ddp, deepspeed_zero*)."""
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    """Lightning Trainer settings (conf/trainer/: cpu, gpu, debug); any other Trainer argument with
    +trainer.<arg>=..."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """The optimisation: batch sizes, optimizer, learning-rate schedule, loss."""
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    """Loggers: Lightning's CSV log and Weights & Biases (conf/logger/)."""
    callbacks: CallbacksConfig = field(default_factory=CallbacksConfig)
    """Early stopping, checkpoint selection and resume, and more Lightning callbacks by name
    (conf/callbacks/)."""
    quantize: QuantizeConfig = field(default_factory=QuantizeConfig)
    """The quantize stage: ONNX export, INT8 dynamic and static, FP16, pruning, distillation and QAT
    (conf/quantize/int8.yaml)."""
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    """The evaluate stage: thresholds, baselines, latency timing (conf/evaluate/)."""
    export: ExportConfig = field(default_factory=ExportConfig)
    """The export stage: which variant ships and the parity checks it must pass
    (conf/export/onnx.yaml)."""
    seed: int = bounded(42, ge=0, lt=2**32)
    """Seeds everything: data order, simulators, splits, model initialisation, dropout and gates
    (numpy's generators take seeds in [0, 2**32))."""
    optimized_metric: str = "val/auprc"
    """The metric `train.py` returns to a Hydra sweeper (`val/<name>` from the train stage, or
    `test/<variant>/<metric>` from evaluate)."""


# each key's allowed values, declared beside its section's dataclass
CHOICES: dict[str, tuple[str, ...]] = {
    **data.CHOICES,
    **tabular.CHOICES,
    **model.CHOICES,
    **training.CHOICES,
    **compression.CHOICES,
    **evaluation.CHOICES,
}

# list-valued keys whose items are each one of the choices
LIST_CHOICES: dict[str, tuple[str, ...]] = {"evaluate.baselines": BASELINES}

# keys that moved: an old override names the new key instead of failing as a typo
MOVED = {"export.variant": "export.select.variant (with export.select.rule=variant)"}


# YAML 1.1 (OmegaConf's dotlist parser) reads off/no as false and on/yes as true, so a choice
# spelled that way on the command line (`export.tensorrt=off`) arrives as a boolean
_YAML_BOOLEAN_WORDS = {False: ("off", "no"), True: ("on", "yes")}


def _check_choices(cfg: DictConfig, source: str) -> None:
    for key, allowed in CHOICES.items():
        value = OmegaConf.select(cfg, key)
        if isinstance(value, bool) or value in ("False", "True"):
            flag = value if isinstance(value, bool) else value == "True"
            words = [w for w in _YAML_BOOLEAN_WORDS[flag] if w in allowed]
            if len(words) == 1:
                OmegaConf.update(cfg, key, words[0])
                value = words[0]
        if value is not None and value not in allowed:
            raise PipelineError(
                f"{source}: config key '{key}' = {value!r}: expected one of {', '.join(allowed)}"
            )
    for key, allowed in LIST_CHOICES.items():
        for item in OmegaConf.select(cfg, key) or []:
            if item not in allowed:
                raise PipelineError(
                    f"{source}: config key '{key}' has {item!r}: expected items each one of "
                    f"{', '.join(allowed)}"
                )


def _check_ranges(cfg: PipelineConfig, source: str) -> None:
    split = cfg.data.split
    if (
        not 0 < split.val_fraction < 1
        or not 0 < split.test_fraction < 1
        or (split.val_fraction + split.test_fraction >= 1)
    ):
        raise PipelineError(
            f"{source}: config keys 'data.split.val_fraction'/'test_fraction' must each be in "
            f"(0, 1) and sum below 1, got {split.val_fraction} and {split.test_fraction}"
        )
    if cfg.model.is_moe and (cfg.model.top_k != 2 or cfg.model.num_experts < 2):
        # DeepSpeed's top-1 gate asserts batch > min_capacity, which rules out batch-1 inference
        raise PipelineError(
            f"{source}: config keys 'model.top_k' = {cfg.model.top_k}, 'model.num_experts' = "
            f"{cfg.model.num_experts}: {cfg.model.name} expects top_k = 2 and at least 2 experts"
        )
    if cfg.strategy.zero_stage == 3 and cfg.model.is_moe:
        # measured: deepspeed 0.19 raises "Native DeepSpeed MoE is not supported with ZeRO
        # Stage 3" at engine start, after the data stages; fail before any work instead
        raise PipelineError(
            f"{source}: config key 'strategy' (ZeRO stage 3) with 'model.name' = "
            f"{cfg.model.name!r}: DeepSpeed's MoE layer supports ZeRO stage 1 or 2 only; "
            "expected strategy=deepspeed_zero1|deepspeed_zero2 or a dense model"
        )
    # the modality's own rules: which models it takes, its section's invariants
    try:
        plugin = modality(cfg.data.modality)
    except PipelineError as err:
        raise PipelineError(f"{source}: {err}") from None
    plugin.check(cfg, source)
    try:
        families.check_family(cfg.model)
    except PipelineError as err:
        raise PipelineError(f"{source}: {err}") from None
    weight = cfg.train.pos_weight
    if weight not in (None, "auto") and (
        isinstance(weight, bool)
        or not isinstance(weight, int | float)
        or not math.isfinite(weight)
        or not weight > 0
    ):
        raise PipelineError(
            f"{source}: config key 'train.pos_weight' = {weight!r}: "
            "expected null, 'auto' or a finite number > 0"
        )


def _check_bounds(node: Any, prefix: str, source: str) -> None:
    """Every field declared with `bounded(...)`, anywhere in the tree, within its range."""
    for spec in dataclasses.fields(node):
        value = getattr(node, spec.name)
        key = f"{prefix}{spec.name}"
        bounds: Bounds | None = spec.metadata.get("bounds")
        if bounds is not None and value is not None:
            items = value if isinstance(value, list) else [value]
            if isinstance(value, list) and not value:
                raise PipelineError(f"{source}: config key '{key}' = []: expected a non-empty list")
            for item in items:
                if not bounds.admits(item):
                    raise PipelineError(
                        f"{source}: config key '{key}' = {value!r}: expected "
                        + ("items each " if isinstance(value, list) else "")
                        + bounds.describe()
                    )
        if dataclasses.is_dataclass(value):
            _check_bounds(value, f"{key}.", source)
        elif isinstance(value, dict):
            for name, item in value.items():
                if dataclasses.is_dataclass(item):
                    _check_bounds(item, f"{key}.{name}.", source)


def schema_keys(node: Any = PipelineConfig, prefix: str = "") -> list[str]:
    """Every dotted key the schema declares (not the free-form dicts' contents)."""
    keys = []
    hints = {f.name: f for f in dataclasses.fields(node)}
    for name, spec in hints.items():
        key = f"{prefix}{name}"
        keys.append(key)
        default = (
            spec.default_factory()  # type: ignore[misc]
            if spec.default_factory is not dataclasses.MISSING
            else spec.default
        )
        if dataclasses.is_dataclass(default):
            keys.extend(schema_keys(type(default), f"{key}."))
    return keys


FREE_FORM = (
    "strategy.config.",
    "data.clean.ranges.",
    "data.clean.allowed_values.",
    "model.args.",
)


def unknown_key_message(key: str) -> str | None:
    """For a dotted key the schema does not have: "did you mean ..." with the closest valid
    keys; None when the key is valid or lies inside a free-form mapping."""
    key = key.lstrip("+~")
    if key in MOVED:
        return f"config key '{key}' has moved: use {MOVED[key]}"
    keys = schema_keys()
    if key in keys or key.startswith(FREE_FORM):
        return None
    parent = key.rpartition(".")[0]
    siblings = [k for k in keys if k.rpartition(".")[0] == parent]
    close = difflib.get_close_matches(key, siblings, n=2, cutoff=0.8) or (
        difflib.get_close_matches(key, keys, n=2, cutoff=0.8)
    )
    if close:
        return f"config key '{key}' is not in the schema: did you mean {' or '.join(close)}?"
    where = f"keys under '{parent}': " + ", ".join(k.rpartition(".")[2] for k in siblings)
    return f"config key '{key}' is not in the schema; " + (
        where if siblings else "see pipelines/config.py for the keys"
    )


@functools.cache
def _schema() -> DictConfig:
    """The schema as a config, built once: building it from the dataclasses is most of a
    validation's time, and `OmegaConf.merge` copies its first argument, so this one is never
    changed."""
    return OmegaConf.structured(PipelineConfig)


def validate(cfg: DictConfig | dict, source: str = "config") -> PipelineConfig:
    """Merge `cfg` onto the schema; unknown keys, wrong types and bad choices fail here."""
    raw = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(cfg)
    raw = OmegaConf.masked_copy(raw, [k for k in raw if k != "hydra"])
    raw = split_extras(raw, source, TrainerConfig, CallbacksConfig)
    try:
        merged = OmegaConf.merge(_schema(), raw)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "?"
        unknown = unknown_key_message(key) if key != "?" else None
        if unknown:
            raise PipelineError(f"{source}: {unknown}") from None
        reason = str(err).splitlines()[0]
        raise PipelineError(f"{source}: config key '{key}': {reason}") from None
    _check_choices(merged, source)
    try:
        typed: PipelineConfig = OmegaConf.to_object(merged)  # type: ignore[assignment]
    except PipelineError as err:
        # a section's own __post_init__ check (the text settings) names the key, not the file
        raise PipelineError(f"{source}: {err}") from None
    _check_bounds(typed, "", source)
    _check_ranges(typed, source)
    return typed


def load_params(
    path: str | Path = "params.yaml", overrides: list[str] | None = None
) -> PipelineConfig:
    """Read the composed config DVC tracks (params.yaml), apply dotlist overrides, validate."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: params file not found (run `make params` to compose it)")
    try:
        cfg = OmegaConf.load(path)
        if overrides:
            # Hydra's "+key=value" (add a key) reads as a plain override here: the schema
            # decides whether the key exists
            plain = [o.removeprefix("++").removeprefix("+") for o in overrides]
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(plain))
    except (OmegaConfBaseException, yaml.YAMLError) as err:
        reason = " ".join(str(err).split())
        raise PipelineError(f"{path}: not a valid params file: {reason}") from None
    return validate(cfg, source=str(path))


def to_container(section: Any) -> Any:
    """A plain dict/list view of a config dataclass, for JSON files and W&B."""
    return OmegaConf.to_container(OmegaConf.structured(section), resolve=True)
