"""The contract between the sweeper and a trial's job: which trial this job is, and how it
reports intermediate values so the study's pruner can stop it.

The sweeper puts the trial's identity into the job's environment (through Hydra's
`hydra.job.env_set`, so it works in-process with the basic launcher and in joblib's worker
processes alike; the storage URL, which may carry a database password, through the sweeper's
own process environment instead, which the jobs inherit, so Hydra never saves it).
A job calls `report(value, step)` once per epoch; when the pruner says stop,
`report` raises `optuna.TrialPruned`, the job ends with that exception and the sweeper records
the trial as PRUNED (not FAILED). Outside a sweep `report` does nothing.

Module level stays import-light: Hydra imports this module while scanning for plugins.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:  # pragma: no cover
    import optuna

ENV_STORAGE = "MOE_OPTUNA_STORAGE"
ENV_STUDY = "MOE_OPTUNA_STUDY"
ENV_TRIAL_ID = "MOE_OPTUNA_TRIAL_ID"
ENV_TRIAL_NUMBER = "MOE_OPTUNA_TRIAL_NUMBER"
# storage value for a study kept in the sweeper's memory (only reachable in the same process)
IN_MEMORY = "in-memory"

_trials: dict[tuple[str, str, int], Any] = {}
# studies without storage live in the sweeper's process: the sweeper (_impl) registers each
# here, and a job run in-process by the basic launcher finds it to report intermediate values
# (a joblib worker cannot: no pruning there). Kept here, not in _impl, so the contract module
# a job imports depends on nothing of the sweeper's
IN_PROCESS_STUDIES: dict[str, optuna.Study] = {}


# a NamedTuple, not a dataclass: Hydra executes this module before it is in sys.modules, where
# dataclasses cannot resolve the (postponed) annotations
class TrialContext(NamedTuple):
    storage: str
    study_name: str
    trial_id: int
    number: int


def context() -> TrialContext | None:
    """This job's trial, or None when the job is not an Optuna sweep trial."""
    try:
        return TrialContext(
            storage=os.environ[ENV_STORAGE],
            study_name=os.environ[ENV_STUDY],
            trial_id=int(os.environ[ENV_TRIAL_ID]),
            number=int(os.environ[ENV_TRIAL_NUMBER]),
        )
    except (KeyError, ValueError):
        return None


def current_trial() -> optuna.Trial | None:
    """The running trial as an `optuna.Trial` (report / should_prune / set_user_attr)."""
    ctx = context()
    if ctx is None:
        return None
    key = (ctx.storage, ctx.study_name, ctx.trial_id)
    if key not in _trials:
        import optuna

        if ctx.storage == IN_MEMORY:
            study = IN_PROCESS_STUDIES.get(ctx.study_name)
            if study is None:  # a worker process cannot see the sweeper's in-memory study
                return None
        else:
            # pruners are not kept in the storage: the job builds the sweep's own from its
            # Hydra config, so should_prune() asks the configured pruner, not Optuna's default
            from ._storage import open_storage

            # opened as the sweeper opens it (journal:///path, a DSN's connect timeout); no
            # heartbeat here: the sweeper's process beats for the trials it launched
            study = optuna.load_study(
                study_name=ctx.study_name,
                storage=open_storage(ctx.storage),
                pruner=_configured_pruner(),
            )
        _trials.clear()  # one trial per job; do not keep earlier trials' studies alive
        _trials[key] = optuna.trial.Trial(study, ctx.trial_id)
    return _trials[key]


def _configured_pruner() -> optuna.pruners.BasePruner:
    import optuna
    from hydra.core.hydra_config import HydraConfig

    from ._build import build

    node = HydraConfig.get().sweeper.get("pruner") if HydraConfig.initialized() else None
    # built as the sweeper builds it (keys of another pruner choice left out), quietly: the
    # sweeper has said what it left out
    pruner = build(node, "pruner", quiet=True)
    return pruner if isinstance(pruner, optuna.pruners.BasePruner) else optuna.pruners.NopPruner()


def report(value: float, step: int) -> None:
    """Report an intermediate value; raise optuna.TrialPruned when the pruner stops the trial."""
    trial = current_trial()
    # Optuna prunes single-objective studies only (Trial.report raises for several objectives)
    if trial is None or len(trial.study.directions) > 1:
        return
    import math

    import optuna

    if not math.isfinite(value):
        # a NaN/inf metric is a failed trial, not a pruned one: end it now, recorded as FAIL
        raise FloatingPointError(f"trial {trial.number}: non-finite value {value} at step {step}")
    trial.report(float(value), step)
    if trial.should_prune():
        raise optuna.TrialPruned(
            f"trial {trial.number} pruned at step {step} (intermediate value {value:.6g})"
        )
