"""The sweep loop: Optuna's ask-and-tell interface driving Hydra's launcher in batches.

Everything algorithmic is Optuna's: samplers, pruners, distributions, storage, enqueueing,
`tell` with COMPLETE / PRUNED / FAIL (a NaN objective is turned into FAIL by Optuna itself),
best trial, parameter importances and plots. This module only maps Hydra's override syntax to
Optuna distributions (as the released plugin does), hands each trial's identity to its job, and
makes a re-run of a killed sweep continue its study - and only its own: a study remembers
the overrides it was started with (search space, fixed values, directions; user attribute
`sweep_overrides`), and a sweep with other overrides does not silently add trials to it.
Several sweep processes may share one study (`n_workers`): `n_trials` is then the study's
total, settled by trial number, and with a heartbeat a dead worker's trials are failed and run
again by the others (_storage.py opens the storage for both).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import math
import os
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, MutableSequence, Sequence
from pathlib import Path
from typing import Any

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    ChoiceSweep,
    IntervalSweep,
    Override,
    RangeSweep,
    Transformer,
)
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from hydra.utils import get_method
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState

from . import trial as trial_contract
from ._build import SweepConfigError, build
from ._secrets import hide_password, mask_storage_in_argv, mask_storage_in_config
from ._storage import absolute_storage, check_workers, open_storage

log = logging.getLogger(__name__)

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
RETRY_ATTR = "retry_of"
# a trial asked after other workers had taken the whole budget: recorded FAIL, never run
SURPLUS_ATTR = "surplus"
SIGNATURE_ATTR = "sweep_overrides"


def distribution_from_override(override: Override) -> BaseDistribution | str:
    """Hydra sweep syntax -> Optuna distribution, with the released plugin's semantics:
    choice -> categorical; range(a, b, s) -> int/float stepped with b included (shuffled:
    categorical); interval(a, b) -> float (int when both ends are ints); tag(log, ...) -> log.
    A plain value is a fixed parameter (returned as its override string)."""
    if not override.is_sweep_override():
        return override.get_value_element_as_str()
    value = override.value()
    if override.is_choice_sweep() or (
        override.is_range_sweep() and isinstance(value, RangeSweep) and value.shuffle
    ):
        assert isinstance(value, ChoiceSweep | RangeSweep)
        choices = list(override.sweep_iterator(transformer=Transformer.encode))
        return CategoricalDistribution(choices)
    if override.is_range_sweep():
        assert isinstance(value, RangeSweep) and value.start is not None and value.stop is not None
        if any(isinstance(v, float) for v in (value.start, value.stop, value.step)):
            return FloatDistribution(value.start, value.stop, step=value.step)
        return IntDistribution(int(value.start), int(value.stop), step=int(value.step))
    if override.is_interval_sweep():
        assert isinstance(value, IntervalSweep) and value.start is not None
        assert value.end is not None
        log_scale = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log_scale)
        return FloatDistribution(value.start, value.end, log=log_scale)
    raise NotImplementedError(f"{override} is not supported by the Optuna sweeper")


def search_space_from_overrides(
    arguments: Sequence[str],
) -> tuple[dict[str, BaseDistribution], dict[str, str]]:
    """Split overrides into a search space and fixed parameters (a later override wins)."""
    space: dict[str, BaseDistribution] = {}
    fixed: dict[str, str] = {}
    for override in OverridesParser.create().parse_overrides(list(arguments)):
        name = override.get_key_element()
        value = distribution_from_override(override)
        space.pop(name, None)
        fixed.pop(name, None)
        if isinstance(value, BaseDistribution):
            space[name] = value
        else:
            fixed[name] = value
    return space, fixed


def sweep_signature(
    space: dict[str, BaseDistribution], fixed: dict[str, str], directions: list[str]
) -> dict[str, Any]:
    """What makes two sweeps the same study: each parameter's distribution or fixed value, and
    the directions. Not n_trials, n_jobs, the sampler or the pruner: a study may go on with
    more trials or another sampler. JSON-able, and readable in optuna-dashboard."""
    overrides = {name: repr(d) for name, d in space.items()} | {
        name: f"={value}" for name, value in fixed.items()
    }
    return {"overrides": dict(sorted(overrides.items())), "directions": list(directions)}


def signature_key(signature: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(signature, sort_keys=True).encode()).hexdigest()[:10]


def signature_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """`key: before -> now` for each override that differs (`unset` where there was none)."""
    before, now = old.get("overrides", {}), new.get("overrides", {})
    changes = [
        f"{key}: {before.get(key, 'unset')} -> {now.get(key, 'unset')}"
        for key in sorted(before.keys() | now.keys())
        if before.get(key) != now.get(key)
    ]
    if old.get("directions") != new.get("directions"):
        changes.append(f"direction: {old.get('directions')} -> {new.get('directions')}")
    return changes


def grid_choices(name: str, distribution: BaseDistribution) -> list[Any]:
    if isinstance(distribution, CategoricalDistribution):
        return list(distribution.choices)
    if isinstance(distribution, IntDistribution | FloatDistribution) and distribution.step:
        n = int(round((distribution.high - distribution.low) / distribution.step)) + 1
        return [distribution.low + i * distribution.step for i in range(n)]
    raise ValueError(
        f"hydra.sweeper.params.{name}: GridSampler needs choice(...) or range(...), "
        f"got a continuous {type(distribution).__name__}"
    )


def _quote(value: str) -> str:
    """A string as a quoted Hydra override value (URLs carry ':' and '/')."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def replaced_trials(trials: Sequence[optuna.trial.FrozenTrial]) -> set[int]:
    """Numbers of the trials another trial re-runs: re-queued by a restarted sweep
    (`retry_of`) or by the heartbeat's retry callback (its `retry_history`)."""
    replaced = {t.user_attrs.get(RETRY_ATTR) for t in trials} - {None}
    for t in trials:
        replaced.update(t.system_attrs.get("retry_history", ()))
    return replaced  # type: ignore[return-value]


def budget_trials(trials: Sequence[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    """The trials that use up `n_trials`, in number order: every trial, waiting, running or
    finished, except those another trial re-runs and the surplus ones no job ran."""
    replaced = replaced_trials(trials)
    return sorted(
        (t for t in trials if t.number not in replaced and not t.user_attrs.get(SURPLUS_ATTR)),
        key=lambda t: t.number,
    )


def counted_trials(study: optuna.Study) -> int:
    """Trials that use up the budget and are finished: a trial a killed sweep left behind does
    not count (its params were queued again, so the retry is the one that counts)."""
    return sum(1 for t in budget_trials(study.get_trials(deepcopy=False)) if t.state in FINISHED)


def within_budget(study: optuna.Study, trial: optuna.Trial, n_trials: int) -> bool:
    """Whether `trial`, just asked, is one of the study's first `n_trials`. Workers sharing a
    study may both ask when one slot is left; the storage numbers trials in order, and every
    trial numbered below this one already exists, so ranking by number settles the race the
    same way in every worker (a lower trial re-run later only frees a slot)."""
    trials = study.get_trials(deepcopy=False)
    ahead = [t for t in budget_trials(trials) if t.number < trial.number]
    return len(ahead) < n_trials


def recover_interrupted(study: optuna.Study) -> list[int]:
    """Trials left RUNNING by a killed sweep: queue their params again, then mark them FAIL.

    Assumes one sweep process per study at a time (a second live process's running trials
    would be taken for orphans); distributed sweeps should use Optuna's heartbeat instead."""
    trials = study.get_trials(deepcopy=False)
    queued = {t.user_attrs.get(RETRY_ATTR) for t in trials if t.state == TrialState.WAITING}
    recovered = []
    for stale in (t for t in trials if t.state == TrialState.RUNNING):
        if stale.number not in queued:  # queue first: a kill between the two steps loses nothing
            study.enqueue_trial(
                stale.params, user_attrs={RETRY_ATTR: stale.number}, skip_if_exists=False
            )
        study.tell(stale.number, state=TrialState.FAIL)
        recovered.append(stale.number)
    return recovered


def _tell(study: optuna.Study, trial: optuna.Trial, **outcome: Any) -> TrialState:
    """study.tell, tolerating GridSampler's `study.stop()` after the last grid point (that
    call only works inside study.optimize; the trial is stored before it is raised)."""
    try:
        return study.tell(trial, **outcome).state
    except RuntimeError as err:
        if "Study.stop" not in str(err):
            raise
        return study.get_trials(deepcopy=False)[trial.number].state


def raise_first_failure(
    returns: Sequence[JobReturn], failures: Sequence[bool], max_failure_rate: float
) -> None:
    """Past `max_failure_rate`: end the sweep as the released plugin does, with the first
    failed job's own exception (JobReturn.return_value writes "Error executing job with
    overrides: ..." to stderr and re-raises it; Hydra prints it to stderr and exits 1). A
    trial that failed without raising (a NaN or non-numeric objective) ends it with a
    RuntimeError naming the count and the rate."""
    failed = sum(failures)
    log.error(
        f"{failed} of {len(returns)} trials of the batch failed, more than "
        f"hydra.sweeper.max_failure_rate = {max_failure_rate}: the sweep ends"
    )
    for ret, did_fail in zip(returns, failures, strict=True):
        if did_fail and ret.status == JobStatus.FAILED:
            ret.return_value  # noqa: B018 - re-raises the job's exception, traceback included
    raise RuntimeError(
        f"{failed} of {len(returns)} trials failed (hydra.sweeper.max_failure_rate = "
        f"{max_failure_rate}); each trial's reason is its `fail_reason` in the study"
    )


def check_not_all_failed(study: optuna.Study, sweep_dir: Path) -> None:
    """A sweep whose every trial failed has no result, whatever `max_failure_rate` allowed:
    it exits non-zero (a RuntimeError Hydra prints to stderr) instead of looking like a
    finished sweep to a script or CI job."""
    trials = [t for t in study.get_trials(deepcopy=False) if t.state in FINISHED]
    if trials and all(t.state == TrialState.FAIL for t in trials):
        reasons = Counter(t.user_attrs.get("fail_reason", "no reason recorded") for t in trials)
        common, count = reasons.most_common(1)[0]
        raise RuntimeError(
            f"every trial of study {study.study_name!r} failed ({len(trials)} of "
            f"{len(trials)}; {count} with: {common}); the sweep has no result. The trials' "
            f"logs are in {sweep_dir}"
        )


@contextlib.contextmanager
def heartbeats(storage: optuna.storages.BaseStorage | None, trial_ids: list[int]) -> Iterator[None]:
    """Record the trials' heartbeats in the storage while their jobs run, as Optuna's
    optimize() does for its own trials; the trials of a process that dies stop beating."""
    interval = getattr(storage, "get_heartbeat_interval", lambda: None)()
    if not interval:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while True:
            try:
                for trial_id in trial_ids:
                    storage.record_heartbeat(trial_id)  # type: ignore[union-attr]
            except Exception as err:  # a dropped connection: the next beat reconnects
                log.warning(f"heartbeat not recorded: {type(err).__name__}: {err}")
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name="optuna-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


class OptunaSweeperImpl(Sweeper):
    def __init__(
        self,
        sampler: Any,
        direction: Any,
        storage: Any,
        study_name: str | None,
        n_trials: int,
        n_jobs: int,
        max_failure_rate: float,
        search_space: DictConfig | None,
        custom_search_space: str | None,
        params: DictConfig | None,
        pruner: Any,
        plots: bool,
        force_continue: bool = False,
        n_workers: int = 1,
        heartbeat_interval: int | None = None,
        grace_period: int | None = None,
    ) -> None:
        if not 0.0 <= max_failure_rate <= 1.0:
            raise ValueError(f"hydra.sweeper.max_failure_rate = {max_failure_rate}: expected 0..1")
        if n_jobs < 1 or n_trials < 0:
            raise ValueError(f"hydra.sweeper: n_jobs = {n_jobs}, n_trials = {n_trials}")
        # config nodes, built in sweep() (_build.py: keys of another sampler/pruner left out)
        self.sampler_node = sampler
        self.pruner_node = pruner
        self.force_continue = force_continue
        self.directions = self._directions(direction)
        self.storage = absolute_storage(storage)
        self.n_workers = n_workers
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
        self.study_name = study_name
        self.n_trials = n_trials
        self.n_jobs = n_jobs
        self.max_failure_rate = max_failure_rate
        self.params = self._params(search_space, params)
        self.extend: Callable[[DictConfig, optuna.Trial], None] | None = (
            get_method(custom_search_space) if custom_search_space else None
        )
        self.plots = plots
        self.config: DictConfig | None = None

    @staticmethod
    def _directions(direction: Any) -> list[str]:
        items = list(direction) if isinstance(direction, MutableSequence) else [direction]
        return [str(getattr(d, "name", d)) for d in items]

    @staticmethod
    def _params(search_space: DictConfig | None, params: DictConfig | None) -> dict[str, str]:
        if search_space:
            # the released plugin's deprecated `search_space` form ({type, low, high, ...})
            log.warning("hydra.sweeper.search_space is deprecated; use hydra.sweeper.params")
        if params:
            return {str(k): str(v) for k, v in params.items()}
        if not search_space:
            return {}
        converted = {}
        for name, spec in OmegaConf.to_container(search_space).items():  # type: ignore[union-attr]
            kind = spec["type"]
            if kind == "categorical":
                converted[name] = "choice(" + ", ".join(map(str, spec["choices"])) + ")"
            elif spec.get("step") is not None:
                converted[name] = f"range({spec['low']}, {spec['high']}, {spec['step']})"
            else:
                low, high = spec["low"], spec["high"]
                if kind == "float":
                    low, high = float(low), float(high)
                inner = f"interval({low}, {high})"
                converted[name] = f"tag(log, {inner})" if spec.get("log") else inner
        return converted

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.storage_shown = hide_password(self.storage) if self.storage else "memory"
        # before the launcher composes any job from it: Hydra saves it in each job's .hydra/
        mask_storage_in_config(config)
        mask_storage_in_argv()
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )
        self.sweep_dir = Path(str(config.hydra.sweep.dir))

    def _sampler(self, space: dict[str, BaseDistribution], n_existing: int) -> Any:
        sampler = build(self.sampler_node, "sampler")
        if isinstance(sampler, functools.partial):
            if sampler.func is optuna.samplers.GridSampler:
                grid = {name: grid_choices(name, d) for name, d in space.items()}
                size = math.prod(len(v) for v in grid.values())
                if self.n_trials > size:
                    log.info(f"GridSampler: {size} grid points, n_trials {self.n_trials} -> {size}")
                    self.n_trials = size
                return sampler(search_space=grid)
            return sampler()
        if sampler is not None and self.n_workers > 1:
            # workers started with the same seed would propose the same params: each draws
            # its own (a sweep shared by workers is not reproducible by seed anyway: which
            # worker tells which result first decides the next proposals)
            sampler.reseed_rng()
            return sampler
        if sampler is None or n_existing == 0:
            return sampler
        # A seeded sampler continuing a study must not replay its first draws: its random
        # state is not in the storage, so a fresh one with the same seed would propose the
        # trials already run again. Reseed it with seed + trials so far (still reproducible).
        # (A GridSampler, above, reads the grid points already used from the storage.)
        node = self.sampler_node
        seed = node.get("seed") if isinstance(node, DictConfig | dict) else None
        if seed is None:
            sampler.reseed_rng()
            return sampler
        log.info(f"Continuing the study: sampler seed {seed} -> {seed + n_existing}")
        return build(node, "sampler", quiet=True, seed=seed + n_existing)

    def create_study(
        self, space: dict[str, BaseDistribution], fixed: dict[str, str] | None = None
    ) -> optuna.Study:
        signature = sweep_signature(space, fixed or {}, self.directions)
        # an unnamed study is named after its overrides: the same command finds it again
        name = self.study_name or f"sweep-{signature_key(signature)}"
        n_existing = 0
        self.opened = open_storage(self.storage, self.heartbeat_interval, self.grace_period)
        if self.opened is not None:
            try:
                stored = optuna.load_study(study_name=name, storage=self.opened)
            except KeyError:  # no such study yet
                stored = None
            if stored is not None:
                n_existing = len(stored.trials)
                self._check_direction(stored)
                self._check_same_sweep(stored, signature)
        # an empty pruner node (`hydra/sweeper/pruner: none`) means no pruning
        pruner = build(self.pruner_node, "pruner")
        study = optuna.create_study(
            storage=self.opened,
            sampler=self._sampler(space, n_existing),
            pruner=pruner or optuna.pruners.NopPruner(),
            study_name=name,
            directions=self.directions,
            load_if_exists=True,
        )
        study.set_user_attr(SIGNATURE_ATTR, signature)
        if self.storage is None:
            trial_contract.IN_PROCESS_STUDIES[study.study_name] = study
        return study

    def _check_direction(self, stored: optuna.Study) -> None:
        """Optuna cannot turn a study around: the stored directions are the study's."""
        stored_directions = [d.name.lower() for d in stored.directions]
        if stored_directions != [d.lower() for d in self.directions]:
            wanted = self.directions[0] if len(self.directions) == 1 else self.directions
            had = stored_directions[0] if len(stored_directions) == 1 else stored_directions
            raise SweepConfigError(
                f"hydra.sweeper.direction = {wanted}: study {stored.study_name!r} in "
                f"{self.storage_shown} was created to {had}; set the direction to match, or "
                "start another study with hydra.sweeper.study_name=<new name>"
            )

    def _check_same_sweep(self, stored: optuna.Study, signature: dict[str, Any]) -> None:
        """A stored study started with other overrides is not continued by accident (it would
        mix trials of two search spaces or two datasets in one study and its best_params)."""
        before = stored.user_attrs.get(SIGNATURE_ATTR)
        if before is None or before == signature:
            # None: a study made before the sweeper kept signatures, or made by hand (with
            # enqueued trials): adopted as it is
            return
        changes = "; ".join(signature_changes(before, signature))
        if self.force_continue:
            log.warning(f"Continuing study {stored.study_name!r} with changed overrides: {changes}")
            return
        raise SweepConfigError(
            f"study {stored.study_name!r} in {self.storage_shown} was run with other overrides "
            f"({changes}): continue it anyway with hydra.sweeper.force_continue=true, or start "
            "another with hydra.sweeper.study_name=<new name>"
        )

    def sweep(self, arguments: list[str]) -> None:
        assert self.config is not None
        # here, not in __init__: Hydra wraps a constructor's error in its own lines
        check_workers(self.storage, self.n_workers, self.heartbeat_interval, self.grace_period)
        space, fixed = search_space_from_overrides(
            [f"{k}={v}" for k, v in self.params.items()] + list(arguments)
        )
        study = self.create_study(space, fixed)
        # several workers: a RUNNING trial may be another worker's; the heartbeat fails the
        # trials of dead ones. One worker without a heartbeat: they are this sweep's, cut off
        recovered = [] if self._shared() else recover_interrupted(study)
        done = counted_trials(study)
        log.info(
            f"Study {study.study_name!r} in {self.storage_shown}: "
            f"sampler {type(study.sampler).__name__}, pruner {type(study.pruner).__name__}, "
            f"directions {self.directions}; {done} of {self.n_trials} trials done"
            + (f", {self.n_workers} workers" if self.n_workers > 1 else "")
            + (f", re-queued interrupted trials {recovered}" if recovered else "")
        )
        self._announce_trial_env(study)
        try:
            while (trials := self._next_batch(study, space)) is not None:
                if not trials:
                    continue  # every trial asked was surplus: look at the study again
                overrides = [self._job_overrides(study, trial, fixed) for trial in trials]
                with heartbeats(self.opened, [t._trial_id for t in trials]):
                    returns = self.launcher.launch(overrides, initial_job_idx=trials[0].number)
                failures = [self._tell(study, t, r) for t, r in zip(trials, returns, strict=True)]
                if sum(failures) / len(trials) > self.max_failure_rate:
                    self._write_results(study)
                    raise_first_failure(returns, failures, self.max_failure_rate)
        finally:  # the storage URL (a DSN's password) does not outlive the sweep here
            os.environ.pop(trial_contract.ENV_STORAGE, None)
        self._write_results(study)
        check_not_all_failed(study, self.sweep_dir)

    def _shared(self) -> bool:
        """Whether other sweep processes may be running this study now."""
        return self.n_workers > 1 or self.heartbeat_interval is not None

    def _next_batch(
        self, study: optuna.Study, space: dict[str, BaseDistribution]
    ) -> list[optuna.Trial] | None:
        """The trials this worker runs next; [] when every trial it asked was surplus; None
        when the study has its `n_trials` finished, or when the rest are running in other
        workers and no heartbeat could hand this one a dead worker's trial."""
        while True:
            if self.heartbeat_interval is not None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    optuna.storages.fail_stale_trials(study)
            budget = budget_trials(study.get_trials(deepcopy=False))
            finished = sum(1 for t in budget if t.state in FINISHED)
            if finished >= self.n_trials:
                return None
            running = sum(1 for t in budget if t.state == TrialState.RUNNING)
            free = self.n_trials - finished - running
            if free > 0:
                break
            if self.heartbeat_interval is None:
                return None  # the other workers finish the study
            # wait: the trials in flight finish, or a dead worker's go stale and are re-queued
            time.sleep(min(max(self.heartbeat_interval / 2, 0.5), 5.0))
        trials = []
        for _ in range(min(self.n_jobs, free)):
            with warnings.catch_warnings():
                # Optuna warns that its heartbeat is meant for optimize(): this loop runs it
                warnings.filterwarnings("ignore", message="Heartbeat of storage")
                trial = study.ask(fixed_distributions=space)
            if self.n_workers > 1 and not within_budget(study, trial, self.n_trials):
                trial.set_user_attr(SURPLUS_ATTR, True)
                trial.set_user_attr("fail_reason", "asked after other workers took the budget")
                _tell(study, trial, state=TrialState.FAIL)
                log.info(f"Trial {trial.number}: n_trials taken by other workers, not run")
                continue
            trials.append(trial)
        return trials

    def _write_results(self, study: optuna.Study) -> None:
        from ._results import write_results

        write_results(study, self.sweep_dir, self.config, plots=self.plots)

    def _job_overrides(
        self, study: optuna.Study, trial: optuna.Trial, fixed: dict[str, str]
    ) -> list[str]:
        for name, value in fixed.items():
            trial.set_user_attr(name, value)
        if self.extend is not None:
            self.extend(self.config, trial)  # type: ignore[arg-type]
        overlap = trial.params.keys() & fixed.keys()
        if overlap:
            raise ValueError(f"parameters both fixed and searched: {sorted(overlap)}")
        params = {**trial.params, **fixed}
        # `hydra.` overrides are left out of the launcher's log lines; the keys exist because
        # _announce_trial_env added them to every job's config
        return [
            *(f"{name}={value}" for name, value in params.items()),
            f"hydra.job.env_set.{trial_contract.ENV_TRIAL_ID}={trial._trial_id}",
            f"hydra.job.env_set.{trial_contract.ENV_TRIAL_NUMBER}={trial.number}",
        ]

    def _announce_trial_env(self, study: optuna.Study) -> None:
        """Give every job the study's identity: the storage URL through this process's
        environment, which the jobs inherit (in-process, joblib's workers, submitit's jobs),
        since a DSN's password must not be in the config Hydra saves with each job; the rest
        through the jobs' `hydra.job.env_set` (the launcher composes each job from these hydra
        overrides plus the job's own)."""
        assert self.config is not None
        os.environ[trial_contract.ENV_STORAGE] = self.storage or trial_contract.IN_MEMORY
        env = {
            trial_contract.ENV_STUDY: study.study_name,
            trial_contract.ENV_TRIAL_ID: "-1",
            trial_contract.ENV_TRIAL_NUMBER: "-1",
        }
        with read_write(self.config), open_dict(self.config):
            self.config.hydra.overrides.hydra.extend(
                [f"++hydra.job.env_set.{key}={_quote(value)}" for key, value in env.items()]
            )

    def _tell(self, study: optuna.Study, trial: optuna.Trial, ret: JobReturn) -> bool:
        """Record one job's outcome; True when the trial failed."""
        stored = study._storage.get_trial(trial._trial_id)
        if stored.state.is_finished():
            # another worker missed this one's heartbeats for grace_period (a stalled machine)
            # and failed the trial; its params are queued again, so this result is dropped
            log.warning(
                f"Trial {trial.number} was marked {stored.state.name} by another worker while "
                "it ran (no heartbeat for hydra.sweeper.grace_period): its result is dropped"
            )
            return False
        if ret.hydra_cfg is not None:
            trial.set_user_attr("output_dir", str(ret.hydra_cfg.hydra.runtime.output_dir))
        if ret.status != JobStatus.COMPLETED:
            # the job's exception (reading `return_value` would re-raise it and print an
            # "Error executing job" line, wrong for a pruned trial)
            err = ret._return_value
            if isinstance(err, optuna.TrialPruned):
                log.info(f"Trial {trial.number} pruned: {err}")
                _tell(study, trial, state=TrialState.PRUNED)
                return False
            reason = f"{type(err).__name__}: {err}"
            # with the traceback: the job's own log has nothing when it raised in-process
            log.warning(f"Trial {trial.number} failed: {reason}", exc_info=err)
            trial.set_user_attr("fail_reason", reason[:500])
            _tell(study, trial, state=TrialState.FAIL)
            return True
        value = ret.return_value
        try:
            values = [float(v) for v in value] if len(self.directions) > 1 else [float(value)]
        except (TypeError, ValueError):
            reason = f"return value {value!r} is not {len(self.directions)} number(s)"
            log.warning(f"Trial {trial.number} failed: {reason}")
            trial.set_user_attr("fail_reason", reason)
            _tell(study, trial, state=TrialState.FAIL)
            return True
        if not all(math.isfinite(v) for v in values):
            trial.set_user_attr("fail_reason", f"non-finite objective {values}")
        # Optuna itself records a NaN objective (or a wrong number of values) as FAIL
        if _tell(study, trial, values=values) == TrialState.FAIL:
            log.warning(f"Trial {trial.number} failed: objective {values}")
            return True
        log.info(f"Trial {trial.number}: {values if len(values) > 1 else values[0]}")
        return False
