"""`pytest --fast` (`make test-fast`): the edit-test loop's subset, chosen from measured time.

`tests/durations.json` holds each test module's measured seconds (setup, call and teardown of
all its tests, its module fixtures included), written by `pytest --store-durations` (`make
durations`) from a full run. `--fast` keeps the modules measured under FAST_MODULE_SECONDS
and the ones not measured yet (a new module runs in the loop until it is measured), plus
SMOKE, one small end-to-end run of every stage. Whole modules, not single tests: a module's
fixtures are paid by whichever of its tests runs first, so only a module's total is a fair
measure.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

DURATIONS = Path(__file__).with_name("durations.json")
FAST_MODULE_SECONDS = 8.0
# every stage on a small table, in process: the end-to-end check the fast loop keeps
SMOKE = "tests/test_registry.py"

_measured: defaultdict[str, float] = defaultdict(float)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("moe-pipelines")
    group.addoption(
        "--fast",
        action="store_true",
        help=f"only modules measured under {FAST_MODULE_SECONDS:g} s (tests/durations.json), "
        f"new modules, and {SMOKE}",
    )
    group.addoption(
        "--durations-file",
        type=Path,
        default=DURATIONS,
        help="where --fast reads and --store-durations writes the measured seconds",
    )
    group.addoption(
        "--store-durations",
        action="store_true",
        help="write each module's measured seconds to tests/durations.json",
    )


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def fast_modules(durations: dict[str, float], collected: set[str]) -> set[str]:
    """The modules `--fast` keeps out of `collected`."""
    return {
        module
        for module in collected
        if module == SMOKE or durations.get(module, 0.0) < FAST_MODULE_SECONDS
    }


def longest_first(items: list[pytest.Item], durations: dict[str, float]) -> list[pytest.Item]:
    """Whole modules, the longest measured first, each module's tests in their own order.

    `make test` runs modules on parallel workers (pytest-xdist `--dist loadfile`), which take
    modules in collection order: starting the long ones first keeps one long module from
    running alone at the end (longest-processing-time-first scheduling)."""
    rank = {
        module: index
        for index, module in enumerate(
            sorted(
                dict.fromkeys(module_of(item.nodeid) for item in items),
                key=lambda module: -durations.get(module, 0.0),
            )
        )
    }
    return sorted(items, key=lambda item: rank[module_of(item.nodeid)])


def is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    path: Path = config.getoption("--durations-file")
    durations = json.loads(path.read_text()) if path.is_file() else {}
    if is_xdist_worker(config):
        items[:] = longest_first(items, durations)
    if not config.getoption("--fast"):
        return
    keep = fast_modules(durations, {module_of(item.nodeid) for item in items})
    selected = [item for item in items if module_of(item.nodeid) in keep]
    deselected = [item for item in items if module_of(item.nodeid) not in keep]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _measured[module_of(report.nodeid)] += report.duration


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # under pytest-xdist the controller sees every worker's reports; a worker writes nothing
    if is_xdist_worker(session.config):
        return
    if not session.config.getoption("--store-durations") or not _measured:
        return
    path: Path = session.config.getoption("--durations-file")
    recorded = json.loads(path.read_text()) if path.is_file() else {}
    recorded.update({module: round(seconds, 2) for module, seconds in _measured.items()})
    path.write_text(json.dumps(dict(sorted(recorded.items())), indent=2) + "\n")
