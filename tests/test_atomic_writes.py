"""Files are replaced whole or not at all: a run killed while writing leaves the previous file,
never a truncated one (the benchmarks' committed record, the stages' JSON)."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from pipelines import io
from tests.small import REPO


def results_file_module():
    """benchmarks/results_file.py as the benchmark scripts import it (by file, not package)."""
    spec = importlib.util.spec_from_file_location(
        "results_file", REPO / "benchmarks" / "results_file.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def results_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    module = results_file_module()
    monkeypatch.setattr(module, "REPO", tmp_path)
    monkeypatch.setattr(module, "RECORDED", tmp_path / "benchmarks" / "results")
    monkeypatch.setattr(module, "SCRATCH", tmp_path / "outputs" / "benchmarks")
    return module


def test_write_results_moves_a_complete_file_from_the_same_folder_over_the_old_one(
    results_file, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = results_file.write_results("inference", {"speedup": 1.0}, record=True)
    moves = []
    real_replace = os.replace

    def watched(source, target):
        # at the moment of the move the old record is still whole and the new one complete
        moves.append(
            (Path(source).parent, json.loads(Path(target).read_text()), Path(source).read_text())
        )
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", watched)
    results_file.write_results("inference", {"speedup": 2.5}, record=True)
    assert len(moves) == 1
    folder, old, new = moves[0]
    assert folder == path.parent  # same file system: the rename is atomic
    assert old == {"speedup": 1.0} and json.loads(new) == {"speedup": 2.5}
    assert json.loads(path.read_text()) == {"speedup": 2.5}
    assert sorted(p.name for p in path.parent.iterdir()) == ["inference.json"]


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary(
    results_file, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = results_file.write_results("serving", {"qps": 900}, record=False)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError, match="No space left"):
        results_file.write_results("serving", {"qps": 1200}, record=False)
    assert json.loads(path.read_text()) == {"qps": 900}
    assert [p.name for p in path.parent.iterdir()] == ["serving.json"]


def test_an_atomic_write_keeps_the_files_mode_and_makes_new_files_readable(
    tmp_path: Path,
) -> None:
    fresh = tmp_path / "fresh.json"
    io.write_json(fresh, {"a": 1})
    assert fresh.stat().st_mode & 0o777 == 0o644
    shared = tmp_path / "shared.json"
    shared.write_text("{}")
    shared.chmod(0o664)
    io.write_json(shared, {"b": 2})
    assert shared.stat().st_mode & 0o777 == 0o664
    assert json.loads(shared.read_text()) == {"b": 2}
