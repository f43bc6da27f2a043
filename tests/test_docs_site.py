"""The documentation site's own guarantees, checked without building it (CI builds it with
`make docs`): a short README whose links resolve, every page in the navigation, a config
reference that lists every schema key with a description, and generated tables that read
what the repository holds."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
import yaml

from docgen import config_reference, results_tables, stage_table
from pipelines.config import schema_keys
from tests.small import REPO

LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_the_readme_is_a_front_door_of_at_most_200_lines() -> None:
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; move detail into docs/"
    text = "\n".join(lines)
    assert "make run" in text and "make test" in text


def test_every_relative_link_in_the_readme_resolves() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    targets = [t for t in LINK.findall(text) if not t.startswith(("http://", "https://"))]
    assert targets, "the README links into the docs"
    missing = [t for t in targets if not (REPO / t.split("#")[0]).exists()]
    assert not missing, f"README links to files that do not exist: {missing}"


def _nav_pages(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [page for value in node.values() for page in _nav_pages(value)]
    if isinstance(node, list):
        return [page for item in node for page in _nav_pages(item)]
    return []


def test_every_page_is_in_the_navigation_and_every_nav_entry_is_a_page() -> None:
    # mkdocs.yml holds a !!python/name tag only if someone adds one; plain YAML here
    nav = _nav_pages(yaml.safe_load((REPO / "mkdocs.yml").read_text())["nav"])
    pages = sorted(str(p.relative_to(REPO / "docs")) for p in (REPO / "docs").rglob("*.md"))
    assert sorted(nav) == pages


def test_the_config_reference_describes_every_schema_key() -> None:
    rows = config_reference.all_key_docs()
    documented = {row.key for row in rows}
    assert set(schema_keys()) <= documented
    assert {"serve.max_batch", "serve.drift.psi_alert"} <= documented
    assert config_reference.undocumented(rows) == []
    page = config_reference.render()
    for key in ("lr", "max_wait_ms", "calibration_method"):
        assert f"| `{key}` |" in page
    # the range and the allowed values come from the schema, not from prose
    assert "| `lr` | `float` | `0.003` | > 0 |" in page
    assert "| `seed` | `int` | `42` | ≥ 0 and < 4294967296 |" in page
    assert "one of minmax, entropy, percentile" in page


@dataclasses.dataclass
class _Inner:
    """A section documented by its class."""

    width: int = 4
    """How wide."""


@dataclasses.dataclass
class _Outer:
    inner: _Inner = dataclasses.field(default_factory=_Inner)
    depth: int = 2


@dataclasses.dataclass
class _Top:
    outer: _Outer = dataclasses.field(default_factory=_Outer)
    """The outer section, described where it is declared."""
    bare: _Outer = dataclasses.field(default_factory=_Outer)


def test_a_key_without_a_description_is_named_and_fails_the_reference() -> None:
    rows = {row.key: row for row in config_reference.key_docs(_Top)}
    assert list(rows)[:4] == ["outer", "outer.inner", "outer.inner.width", "outer.depth"]
    assert rows["outer"].meaning == "The outer section, described where it is declared."
    assert rows["outer.inner"].meaning == "A section documented by its class."
    assert rows["outer.inner.width"].meaning == "How wide."
    # a leaf with no docstring, and a section whose class has only @dataclass's signature
    assert config_reference.undocumented(list(rows.values())) == [
        "outer.depth",
        "bare",
        "bare.depth",
    ]


def test_the_stage_table_has_every_dvc_stage_with_its_command_and_params() -> None:
    table = stage_table.render(REPO / "dvc.yaml")
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        row = next(line for line in table.splitlines() if line.startswith(f"| {name} |"))
        assert f"`{stage['cmd']}`" in row
        for param in stage.get("params") or []:
            assert f"`{param}`" in row


@pytest.mark.parametrize(
    "path", sorted((REPO / "benchmarks" / "results").glob("*.json")), ids=lambda p: p.stem
)
def test_each_recorded_results_file_renders_with_its_figures(path: Path) -> None:
    results = json.loads(path.read_text())
    page = results_tables.render(path, REPO)
    assert f"`{path.relative_to(REPO)}`" in page
    if isinstance(results.get("command"), str):
        assert results["command"].replace("|", "\\|") in page
    if isinstance(results.get("machine"), str):
        assert results["machine"] in page
    # every section of the file has its table
    for name, section in results.items():
        if isinstance(section, dict) and section:
            assert f"**{name}**" in page


def test_every_benchmark_page_names_its_results_file_and_every_results_file_has_a_page() -> None:
    pages = "\n".join(p.read_text() for p in (REPO / "docs" / "benchmarks").glob("*.md"))
    for path in (REPO / "benchmarks" / "results").glob("*.json"):
        assert f"<!-- generated: results benchmarks/results/{path.name} -->" in pages


def test_the_reference_page_refuses_to_render_with_an_undocumented_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(config_reference, "all_key_docs", lambda: config_reference.key_docs(_Top))
    with pytest.raises(config_reference.UndocumentedKeys, match="outer.depth, bare, bare.depth"):
        config_reference.render()
