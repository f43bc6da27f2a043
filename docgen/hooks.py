"""MkDocs hook (mkdocs.yml `hooks:`): fills each `<!-- generated: ... -->` line of a page with
what the code says (config reference, CLI, stage table, benchmark results). A placeholder it
does not know, or a schema key without a description, fails the build."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from mkdocs.exceptions import PluginError

REPO = Path(__file__).resolve().parent.parent
# MkDocs loads this file by path, from its own script's directory: the generators are
# imported from the repository root, whatever the working directory or PYTHONPATH
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from docgen import cli_reference, config_reference, results_tables, stage_table  # noqa: E402

PLACEHOLDER = re.compile(r"^<!-- generated: (\S+)(?: (\S+))? -->$", re.M)
_cli_cache: dict[tuple[float, ...], str] = {}


def _entry_points_stamp() -> tuple[float, ...]:
    files = [REPO / "train.py", REPO / "Makefile", *REPO.glob("benchmarks/*.py")]
    files += [*REPO.glob("stages/*.py"), *REPO.glob("pipelines/serve/*.py")]
    return tuple(sorted(f.stat().st_mtime for f in files))


def _cli() -> str:
    """The CLI page takes ~10 s (it runs every entry point's --help): once per change."""
    stamp = _entry_points_stamp()
    if stamp not in _cli_cache:
        _cli_cache.clear()
        _cli_cache[stamp] = cli_reference.render()
    return _cli_cache[stamp]


def _generate(kind: str, argument: str | None, page: str) -> str:
    if kind == "config-reference":
        try:
            return config_reference.render()
        except config_reference.UndocumentedKeys as err:
            raise PluginError(str(err)) from None
    if kind == "cli-reference":
        return _cli()
    if kind == "dvc-stages":
        return stage_table.render(REPO / "dvc.yaml")
    if kind == "results" and argument:
        path = REPO / argument
        if not path.is_file():
            raise PluginError(f"{page}: results file {argument} not found")
        return results_tables.render(path, REPO)
    raise PluginError(f"{page}: unknown placeholder <!-- generated: {kind} {argument or ''} -->")


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ANN001 - MkDocs API
    return PLACEHOLDER.sub(lambda m: _generate(m.group(1), m.group(2), page.file.src_uri), markdown)
