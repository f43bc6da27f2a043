# ruff: noqa: UP006, UP007, UP035 - typing.Optional/List/Dict: OmegaConf reads these at run time
"""Config nodes of the sweeper, registered in Hydra's ConfigStore under the released plugin's
names: `hydra/sweeper: optuna`, `hydra/sweeper/sampler: tpe|random|cmaes|grid|nsgaii|qmc` and
(new) `hydra/sweeper/pruner: none|median|successive_halving|hyperband`.

`sampler` and `pruner` are plain mappings, not typed nodes: a lightning-hydra-template config
that sets `sampler: {_target_: optuna.samplers.TPESampler, seed: 1234, n_startup_trials: 10}`
merges onto them. Switching the choice on the command line (`hydra/sweeper/sampler=random`)
keeps the sweep config's other keys in the mapping, so Hydra does not instantiate them
(`_recursive_: false`): the sweeper builds them and leaves out the keys meant for another
choice (`_build.py`).
"""

# No `from __future__ import annotations` here: Hydra executes plugin modules before they are
# in sys.modules, and dataclasses cannot resolve string annotations then.
from dataclasses import dataclass, field
from typing import Any, Dict, List

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

_PROVIDER = "moe_optuna_sweeper"


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    defaults: List[Any] = field(default_factory=lambda: [{"sampler": "tpe"}, {"pruner": "none"}])
    # the sweeper builds `sampler` and `pruner` itself (see the module docstring)
    _recursive_: bool = False

    # an optuna.samplers.* node (built by the sweeper); seed it for a reproducible sweep.
    # MISSING, not None: the node itself must not override what the defaults list put there
    sampler: Any = MISSING
    # minimize | maximize, or a list of them for a multi-objective study
    direction: Any = "minimize"
    storage: Any = None
    """Where the study lives: any SQLAlchemy URL (`sqlite:///outputs/sweeps/x.db` for one
    machine, `postgresql+psycopg://user:${oc.env:SWEEP_DB_PASSWORD}@host:5432/db` for workers on
    many machines), `journal:///path/to/study.log` (Optuna's JournalStorage over a file on a
    shared filesystem; four slashes for an absolute path, as with SQLite), or null: in memory."""
    n_workers: int = 1
    """How many sweep processes (machines) run this study at once, each the same command. Above
    1 the storage must take concurrent writers (PostgreSQL, MySQL or journal; SQLite and memory
    are refused), trials left RUNNING are not re-queued at start (another worker may be running
    them: the heartbeat fails them instead), and `n_trials` is the study's total, shared by all."""
    heartbeat_interval: int | None = None
    """Seconds between a running trial's heartbeats in the storage (SQLAlchemy storages only).
    Set, a trial whose sweep process died (SIGKILL, a lost machine) is marked FAIL by whichever
    worker notices first and its params are run again by one worker (Optuna's retry callback,
    up to 3 times); null: no heartbeat, a killed sweep's trials are re-queued when it restarts."""
    grace_period: int | None = None
    """Seconds without a heartbeat after which a RUNNING trial counts as dead; null: Optuna's
    default, twice `heartbeat_interval`. Needs `heartbeat_interval`."""
    # null: named after the search space and the sweep's overrides, so the same command
    # continues its study and another command starts its own
    study_name: str | None = None
    # a stored study run with other overrides (search space, fixed values, direction) is
    # refused; true continues it anyway, with the new overrides
    force_continue: bool = False
    # trials that count: COMPLETE, PRUNED and FAILED ones (a trial cut off by a killed sweep
    # does not count and is re-run with the same params when the sweep is started again)
    n_trials: int = 20
    # trials per batch handed to hydra/launcher (batches run in parallel with `joblib`)
    n_jobs: int = 1
    # end the sweep, raising the failed job's exception, when a batch has a larger share of
    # failed trials. 0.0 (the released plugin's default): the first failure ends the sweep,
    # since a trial that raises here is a bug or a gate that fails for the whole data config
    # far more often than a bad point of the search space. 1.0 never ends it early, but a
    # sweep in which every trial failed still exits non-zero
    max_failure_rate: float = 0.0
    # deprecated in the released plugin (hydra.sweeper.params replaced it); still read
    search_space: Dict[str, Any] | None = None
    # `key: choice(...) | range(...) | interval(...) | tag(log, interval(...))`
    params: Dict[str, Any] | None = None
    # dotted path of `fn(cfg: DictConfig, trial: optuna.Trial) -> None` suggesting more params
    custom_search_space: str | None = None
    # an optuna.pruners.* node (built by the sweeper and by each job, which reports to it
    # through hydra_plugins...trial.report)
    pruner: Any = MISSING
    # optimisation history, parameter importances, parallel coordinates (PNG; HTML with plotly)
    plots: bool = True


_SAMPLERS: Dict[str, Dict[str, Any]] = {
    "tpe": {"_target_": "optuna.samplers.TPESampler", "seed": None},
    "random": {"_target_": "optuna.samplers.RandomSampler", "seed": None},
    "cmaes": {"_target_": "optuna.samplers.CmaEsSampler", "seed": None},
    # the search space comes from `params` (choice/range only), as in the released plugin
    "grid": {"_target_": "optuna.samplers.GridSampler", "_partial_": True, "seed": None},
    "nsgaii": {"_target_": "optuna.samplers.NSGAIISampler", "seed": None},
    "qmc": {"_target_": "optuna.samplers.QMCSampler", "seed": None},
}

_PRUNERS: Dict[str, Dict[str, Any]] = {
    # an empty node: no pruning (every trial runs all its epochs)
    "none": {},
    "median": {
        "_target_": "optuna.pruners.MedianPruner",
        "n_startup_trials": 5,
        "n_warmup_steps": 1,
    },
    "successive_halving": {
        "_target_": "optuna.pruners.SuccessiveHalvingPruner",
        "min_resource": 1,
        "reduction_factor": 3,
    },
    "hyperband": {
        "_target_": "optuna.pruners.HyperbandPruner",
        "min_resource": 1,
        "reduction_factor": 3,
    },
}

_store = ConfigStore.instance()
_store.store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider=_PROVIDER)
for _name, _node in _SAMPLERS.items():
    _store.store(group="hydra/sweeper/sampler", name=_name, node=_node, provider=_PROVIDER)
for _name, _node in _PRUNERS.items():
    _store.store(group="hydra/sweeper/pruner", name=_name, node=_node, provider=_PROVIDER)
