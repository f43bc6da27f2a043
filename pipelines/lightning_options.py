"""Trainer options and extra callbacks from the command line, as lightning-hydra-template users
write them, still checked before any stage runs:

    python train.py +trainer.profiler=simple +trainer.limit_val_batches=0.5
    python train.py +callbacks.lr_monitor._target_=lightning.pytorch.callbacks.LearningRateMonitor \
        +callbacks.lr_monitor.logging_interval=step

The schema (pipelines/config.py) declares the trainer keys the pipeline itself reads; any other
key under `trainer` must be an argument of `lightning.pytorch.Trainer` and is passed to it
unchanged. Any node under `callbacks` other than the pipeline's own (early_stopping,
checkpoint) must name a Lightning Callback class in `_target_`; it is built with its other keys
and added to the trainer's callbacks. Both end up in the typed config as `trainer.extra` and
`callbacks.extra` (so they count in the run fingerprint, W&B's config and DVC's params).

A key that is not a Trainer argument, a `_target_` that does not import or is no Callback, or
an argument the callback does not take is one line naming the key and what was expected.
Lightning is imported only when such keys are present: validating the usual config stays fast.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import importlib
import inspect
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from pipelines.errors import PipelineError

EXTRA = "extra"
# Trainer arguments the pipeline sets from its own config and code; overriding them would
# silently undo what the pipeline relies on
RESERVED_TRAINER_KEYS = {
    "strategy": "choose it with strategy=<name> (conf/strategy/)",
    "logger": "loggers come from conf/logger/",
    "callbacks": "add callbacks as callbacks.<name>._target_=...",
    "default_root_dir": "the train stage sets it to its resumable work dir",
    "use_distributed_sampler": "the pipeline's resumable sampler splits the data between ranks",
    "enable_checkpointing": "the train stage's checkpoints are its resume and best-model state",
}
_INSTANTIATE_KEYS = frozenset({"_target_", "_partial_", "_recursive_", "_convert_", "_args_"})


def _trainer_arguments() -> list[str]:
    from lightning.pytorch import Trainer

    return [n for n in inspect.signature(Trainer.__init__).parameters if n != "self"]


def split_extras(
    raw: DictConfig, source: str, trainer_schema: type, callbacks_schema: type
) -> DictConfig:
    """Move keys under `trainer` / `callbacks` that the schema dataclasses do not declare into
    `trainer.extra` / `callbacks.extra`, after checking them; `raw` itself is not changed. The
    schema comes in as arguments so this module needs nothing from pipelines.config."""
    trainer_keys = [f.name for f in dataclasses.fields(trainer_schema)]
    callback_keys = [f.name for f in dataclasses.fields(callbacks_schema)]
    trainer, callbacks = raw.get("trainer"), raw.get("callbacks")
    extra_trainer = [k for k in (trainer or {}) if k not in trainer_keys and k != EXTRA]
    extra_callbacks = [k for k in (callbacks or {}) if k not in callback_keys and k != EXTRA]
    if not extra_trainer and not extra_callbacks:
        return raw
    raw = copy.deepcopy(raw)
    with open_dict(raw):
        if extra_trainer:
            check_trainer_options(extra_trainer, trainer_keys, source)
            moved = {k: raw.trainer.pop(k) for k in extra_trainer}
            raw.trainer[EXTRA] = OmegaConf.merge(raw.trainer.get(EXTRA) or {}, moved)
        if extra_callbacks:
            moved = {k: raw.callbacks.pop(k) for k in extra_callbacks}
            for name, node in moved.items():
                build_callback(name, node, source)  # checked now, built again for the fit
            raw.callbacks[EXTRA] = OmegaConf.merge(raw.callbacks.get(EXTRA) or {}, moved)
    return raw


def check_trainer_options(keys: list[str], schema: list[str], source: str) -> None:
    arguments = _trainer_arguments()
    for key in keys:
        if key in RESERVED_TRAINER_KEYS:
            raise PipelineError(
                f"{source}: config key 'trainer.{key}' is set by the pipeline: "
                f"{RESERVED_TRAINER_KEYS[key]}"
            )
        if key not in arguments:
            # a schema key can also be a Trainer argument (max_epochs): name it once
            candidates = list(dict.fromkeys(schema + arguments))
            close = difflib.get_close_matches(key, candidates, n=2, cutoff=0.75)
            hint = (
                f"did you mean {' or '.join('trainer.' + c for c in close)}?"
                if close
                else "see lightning.pytorch.Trainer for its arguments"
            )
            raise PipelineError(
                f"{source}: config key 'trainer.{key}' is neither in the schema nor an argument "
                f"of lightning.pytorch.Trainer; {hint}"
            )


def build_callback(name: str, node: Any, source: str) -> Any:
    """`callbacks.<name>` ({_target_: a Callback class, its arguments...}) as a Callback."""
    from lightning.pytorch.callbacks import Callback

    key = f"callbacks.{name}"
    spec = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
    if not isinstance(spec, dict) or not spec.get("_target_"):
        raise PipelineError(
            f"{source}: config key '{key}' = {spec!r}: expected a callback node with _target_ "
            f"(e.g. +{key}._target_=lightning.pytorch.callbacks.LearningRateMonitor)"
        )
    target = str(spec["_target_"])
    module, _, attr = target.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), attr, None) if module else None
    except ImportError:
        cls = None
    if not (isinstance(cls, type) and issubclass(cls, Callback)):
        what = "is not a lightning Callback class" if cls is not None else "does not import"
        raise PipelineError(
            f"{source}: config key '{key}._target_' = {target!r} {what}: expected a class such "
            "as lightning.pytorch.callbacks.LearningRateMonitor"
        )
    arguments = {k: v for k, v in spec.items() if k not in _INSTANTIATE_KEYS}
    parameters = inspect.signature(cls.__init__).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        accepted = [p for p in parameters if p != "self"]
        for arg in arguments:
            if arg not in accepted:
                close = difflib.get_close_matches(arg, accepted, n=1)
                hint = f"did you mean {close[0]}?" if close else f"it takes {', '.join(accepted)}"
                raise PipelineError(
                    f"{source}: config key '{key}.{arg}': {cls.__name__} has no such argument; "
                    f"{hint}"
                )
    try:
        return cls(**arguments)
    except Exception as err:  # the class's own check of a value (Lightning raises several types)
        reason = " ".join(str(err).split())
        raise PipelineError(f"{source}: config key '{key}': {cls.__name__}: {reason}") from None


def build_callbacks(nodes: dict[str, Any], source: str = "train") -> list[Any]:
    return [build_callback(name, node, source) for name, node in nodes.items()]
