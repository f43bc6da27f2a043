"""The documented export-folder scoring snippets, as the export-folder tests run them: found
under their marker on their docs page, and executed as written from a root where a command
left the export folder (the snippet finds the newest one itself)."""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

from tests.doc_blocks import block_after_marker

# where each command leaves the export folder, relative to the repository root
EXPORT_PLACES = {
    "dvc repro": Path("export"),
    "python train.py": Path("outputs/runs/2026-12-02_05-00-00/export"),
}


def laid_out(folder: Path, root: Path, command: str) -> Path:
    """A copy of the export `folder` where `command` leaves it under `root`; the copy."""
    copy = root / EXPORT_PLACES[command]
    shutil.copytree(folder, copy)
    return copy


def run_snippet(snippet: str, root: Path, max_lines: int = 10) -> dict:
    """Execute the snippet as written, from `root` (where a user runs it: the repository);
    its namespace, its output and the folder it scored (absolute). Its page states its
    length: `max_lines`."""
    assert len(snippet.strip().splitlines()) <= max_lines
    assert "pipelines" not in snippet and "torch" not in snippet
    namespace: dict = {}
    out = io.StringIO()
    with contextlib.chdir(root), contextlib.redirect_stdout(out):
        exec(snippet, namespace)  # noqa: S102 - the documented code
    namespace["stdout"] = out.getvalue()
    namespace["scored_folder"] = (root / namespace["folder"]).resolve()
    return namespace


def doc_snippet(page: str, marker: str, what: str) -> str:
    """The ```python block after `marker` on `page` (relative to the repository); `what`: the
    snippet's name and the constant that holds it in its test file, for the failure message."""
    try:
        return block_after_marker(page, marker)
    except AssertionError as err:
        raise AssertionError(f"{err} (the {what})") from None
