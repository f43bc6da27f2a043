"""data.modality picks the plug-in: a built-in name, or the dotted path of a package of your
own on PYTHONPATH; anything else stops at config load with one line naming the key."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pipelines.config import load_params
from pipelines.errors import PipelineError
from pipelines.layout import Layout
from pipelines.modalities.registry import STAGES
from stages import ingest
from tests.small import REPO

SMALL = ["data.source.rows=2000", "data.source.n_days=10"]


def test_an_unknown_modality_name_is_refused_naming_the_key() -> None:
    with pytest.raises(PipelineError, match=r"'data\.modality' = 'audio': expected one of tab"):
        load_params(REPO / "params.yaml", ["data.modality=audio"])


def test_a_package_without_plug_ins_is_refused_naming_the_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "half_done").mkdir()
    (tmp_path / "half_done" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PipelineError, match=r"module half_done\.checks not found"):
        load_params(REPO / "params.yaml", ["data.modality=half_done"])


@pytest.fixture
def own_modality(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A package outside this repository that serves tables by its own plug-ins (here each
    one hands over to the built-in table plug-in and records that it ran)."""
    package = tmp_path / "user" / "my_tables"
    (package / "plugins").mkdir(parents=True)
    (package / "__init__.py").write_text('ROWS = "records"\nCALLED = []\n')
    (package / "checks.py").write_text(
        "from pipelines.modalities.tabular.checks import check  # noqa: F401\n"
    )
    (package / "plugins" / "__init__.py").write_text("")
    for stage in STAGES:
        (package / "plugins" / f"{stage}.py").write_text(
            f"from pipelines.modalities.tabular.plugins import {stage} as built_in\n"
            "import my_tables\n\n\n"
            "def run(cfg, layout):\n"
            f"    my_tables.CALLED.append({stage!r})\n"
            "    return built_in.run(cfg, layout)\n"
        )
    monkeypatch.syspath_prepend(str(tmp_path / "user"))
    yield "my_tables"
    for name in [m for m in sys.modules if m.startswith("my_tables")]:
        del sys.modules[name]


def test_a_modality_of_your_own_runs_through_the_same_stage(
    own_modality: str, tmp_path: Path
) -> None:
    cfg = load_params(REPO / "params.yaml", [f"data.modality={own_modality}", *SMALL])
    rows = ingest.run(cfg, Layout(tmp_path / "own"))
    assert sys.modules["my_tables"].CALLED == ["ingest"]
    # the same splits as the built-in table plug-in writes for the same data config
    built_in = ingest.run(load_params(REPO / "params.yaml", SMALL), Layout(tmp_path / "built_in"))
    assert rows == built_in and sum(rows.values()) > 0
    own, reference = Layout(tmp_path / "own"), Layout(tmp_path / "built_in")
    for split in ("train", "val", "test"):
        ours = own.split(own.ingested, split).read_bytes()
        assert ours == reference.split(reference.ingested, split).read_bytes()
