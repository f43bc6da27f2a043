"""Samplers and pruners from their config nodes, built by the sweeper rather than by Hydra.

A sweep config sets arguments for the sampler and pruner it was written for (TPE's
`n_startup_trials`, the median pruner's `n_warmup_steps`) on the plain `sampler`/`pruner`
mappings; choosing another one on the command line (`hydra/sweeper/sampler=random`) merges its
`_target_` onto those same mappings. Hydra would pass every key to the new class and fail
("RandomSampler.__init__() got an unexpected keyword argument 'n_startup_trials'"), so the
sweeper config turns Hydra's recursive instantiation off and builds them here:

- a key the chosen class does not take, but another Optuna sampler (pruner) does, belongs to
  the config's other choice: it is left out, and said so in one log line;
- a key no Optuna sampler (pruner) takes is a typo: one line naming it and what the class takes;
- a bad `_target_`, or a value the class rejects, is one line too.

The errors are Hydra's CompactHydraException, which Hydra prints as its message alone.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
import logging
from typing import Any

import optuna
from hydra.errors import CompactHydraException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

# Hydra's own instantiation keys, never the class's arguments
_HYDRA_KEYS = frozenset({"_target_", "_partial_", "_recursive_", "_convert_", "_args_"})


class SweepConfigError(CompactHydraException):
    """A sweeper config problem, reported by Hydra as this one line."""


def _parameters(cls: type) -> set[str] | None:
    """The keyword arguments `cls` takes; None when it takes any (**kwargs)."""
    params = inspect.signature(cls.__init__).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.name != "self"}


@functools.cache
def _known_arguments(kind: str) -> frozenset[str]:
    """Every argument some Optuna sampler (kind='sampler') or pruner takes."""
    module = optuna.samplers if kind == "sampler" else optuna.pruners
    names: set[str] = set()
    for _, cls in inspect.getmembers(module, inspect.isclass):
        names |= _parameters(cls) or set()
    return frozenset(names)


def _plain(node: Any) -> dict[str, Any]:
    if node is None:
        return {}
    if isinstance(node, DictConfig):
        return OmegaConf.to_container(node, resolve=True)  # type: ignore[return-value]
    return dict(node)


def build(node: Any, kind: str, quiet: bool = False, **overrides: Any) -> Any:
    """The `hydra.sweeper.<kind>` node (kind: sampler | pruner) as an Optuna object.

    Returns None for a node without `_target_` (`hydra/sweeper/pruner=none`, or no sampler
    configured: Optuna's default), a functools.partial for a `_partial_` node (GridSampler,
    whose search space the sweeper fills in), else the instance. `overrides` replace keys
    (a resumed study's reseeded sampler)."""
    base = optuna.samplers.BaseSampler if kind == "sampler" else optuna.pruners.BasePruner
    if isinstance(node, base | functools.partial):
        return node  # already built (a config that turned recursive instantiation back on)
    spec = _plain(node) | overrides
    target = spec.get("_target_")
    where = f"hydra.sweeper.{kind}"
    if not target:
        left = sorted(set(spec) - _HYDRA_KEYS)
        if left and not quiet:
            log.info(f"{where} has no _target_: no {kind}; {', '.join(left)} left out")
        return None
    module, _, name = str(target).rpartition(".")
    try:
        # not hydra.utils.get_class: it logs an error of its own before raising
        cls = getattr(importlib.import_module(module), name, None) if module else None
    except ImportError:
        cls = None
    if not isinstance(cls, type):
        raise SweepConfigError(f"{where}._target_ = {target!r}: not an importable class")
    if not issubclass(cls, base):
        raise SweepConfigError(
            f"{where}._target_ = {target!r}: expected an optuna.{kind}s class (a {base.__name__})"
        )
    accepted = _parameters(cls)
    if accepted is not None:
        for key in sorted(set(spec) - _HYDRA_KEYS - accepted):
            if key not in _known_arguments(kind):
                close = difflib.get_close_matches(key, sorted(accepted), n=1) or (
                    difflib.get_close_matches(key, sorted(_known_arguments(kind)), n=1)
                )
                hint = f"did you mean {close[0]}? " if close else ""
                raise SweepConfigError(
                    f"{where}.{key}: no Optuna {kind} has this argument; {hint}"
                    f"{cls.__name__} takes {', '.join(sorted(accepted))}"
                )
            # the sweep config's setting for another sampler/pruner choice
            if not quiet:
                log.info(f"{where}.{key} is not a {cls.__name__} argument: left out")
            del spec[key]
    try:
        return instantiate(OmegaConf.create(spec))
    except Exception as err:
        cause = err.__cause__ or err  # Hydra's InstantiationException wraps the class's own
        reason = " ".join(str(cause).split())
        raise SweepConfigError(f"{where}: {cls.__name__}: {reason}") from None
