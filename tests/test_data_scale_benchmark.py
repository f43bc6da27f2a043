"""benchmarks/data_scale.py end to end at a tiny size: both stages run in their own processes,
and the figures it records are there and consistent (no wall-clock asserts)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.small import load_benchmark


@pytest.fixture(scope="module")
def benchmark() -> ModuleType:
    return load_benchmark("data_scale")


def test_the_benchmark_measures_ingest_and_clean_at_each_size(
    benchmark: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: dict[str, Any] = {}
    monkeypatch.setattr(
        benchmark, "write_results", lambda name, payload, record: written.update({name: payload})
    )
    results = benchmark.main(["--sizes", "2000", "4000", "--workdir", str(tmp_path)])
    assert written == {"data_scale": results}
    for rows in ("2000", "4000"):
        size = results["sizes"][rows]
        assert set(size["stages"]) == {"ingest", "clean"}
        for stage in size["stages"].values():
            assert stage["seconds"] > 0 and stage["peak_rss_mb"] > 0
        assert size["rows_clean"] + size["quarantined"] == size["rows_ingested"]
        assert size["on_disk_mb"]["ingested"] > 0
    assert results["sizes"]["4000"]["rows_ingested"] > results["sizes"]["2000"]["rows_ingested"]
    assert set(results["summary"]["us_per_row"]) == {"2000", "4000"}
    assert list(tmp_path.iterdir()) == [], "each size's temporary root is removed"
