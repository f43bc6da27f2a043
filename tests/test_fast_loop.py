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


def test_the_committed_durations_name_only_modules_that_exist() -> None:
    # a checkout without the file runs every module under --fast (all "not measured")
    recorded = json.loads(DURATIONS.read_text()) if DURATIONS.is_file() else {}
    assert all((REPO / module).is_file() for module in recorded), "stale tests/durations.json"


def test_fast_collection_deselects_the_modules_measured_slow(tmp_path: Path) -> None:
    measured = tmp_path / "durations.json"
    slow = "tests/test_stages.py"
    measured.write_text(
        json.dumps({slow: FAST_MODULE_SECONDS * 10, "tests/test_moe.py": 1.0, SMOKE: 60.0})
    )
    listed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--fast",
            f"--durations-file={measured}",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert not any(line.startswith(slow) for line in listed)
    assert any(line.startswith("tests/test_moe.py::") for line in listed)
    assert any(line.startswith(SMOKE) for line in listed)
    assert any("deselected" in line for line in listed)
