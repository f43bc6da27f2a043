"""`make test-fast` keeps what was measured fast, what was never measured, and the smoke run;
`make test` stays the complete suite."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import DURATIONS, FAST_MODULE_SECONDS, SMOKE, fast_modules

REPO = Path(__file__).resolve().parents[1]


def test_the_fast_loop_drops_only_modules_measured_slow_and_keeps_the_smoke_run() -> None:
    measured = {
        "tests/test_unit.py": 0.4,
        "tests/test_pipeline.py": FAST_MODULE_SECONDS * 20,
        SMOKE: FAST_MODULE_SECONDS * 5,
    }
    collected = {*measured, "tests/test_brand_new.py"}
    assert fast_modules(measured, collected) == {
        "tests/test_unit.py",
        SMOKE,
        "tests/test_brand_new.py",  # not measured yet: it runs until it is
    }


def test_every_recorded_module_exists_and_the_smoke_module_is_recorded() -> None:
    recorded = json.loads(DURATIONS.read_text())
    assert SMOKE in recorded
    assert all((REPO / module).is_file() for module in recorded), "stale tests/durations.json"


def test_make_test_fast_deselects_slow_modules_at_collection() -> None:
    listed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--fast",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    recorded = json.loads(DURATIONS.read_text())
    slow = [m for m, s in recorded.items() if s >= FAST_MODULE_SECONDS and m != SMOKE]
    assert slow and not any(line.startswith(tuple(slow)) for line in listed.splitlines())
    assert any(line.startswith(SMOKE) for line in listed.splitlines())
    assert "deselected" in listed
