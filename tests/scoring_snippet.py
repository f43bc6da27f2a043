"""The documented export-folder scoring snippets, as the export-folder tests run them: found
under their marker on their docs page, and executed with their folder pointed at a test
folder."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from tests.doc_blocks import block_after_marker


def run_snippet(snippet: str, folder: Path, max_lines: int = 10) -> dict:
    """Execute the snippet with its folder pointed at `folder`; its namespace and output. Its
    page states its length: `max_lines`."""
    first, rest = snippet.split("\n", 1)
    assert first == 'folder = "export"', f"the snippet's first line names the folder: {first!r}"
    assert len(snippet.strip().splitlines()) <= max_lines
    assert "pipelines" not in snippet and "torch" not in snippet
    namespace: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(f"folder = {str(folder)!r}\n{rest}", namespace)  # noqa: S102 - the documented code
    namespace["stdout"] = out.getvalue()
    return namespace


def doc_snippet(page: str, marker: str, what: str) -> str:
    """The ```python block after `marker` on `page` (relative to the repository); `what`: the
    snippet's name and the constant that holds it in its test file, for the failure message."""
    try:
        return block_after_marker(page, marker)
    except AssertionError as err:
        raise AssertionError(f"{err} (the {what})") from None
