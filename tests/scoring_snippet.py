"""The README's export-folder scoring snippets, as the export-folder tests run them: found
under their marker in README.md, and executed with their folder pointed at a test folder."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from tests.small import REPO


def run_snippet(snippet: str, folder: Path) -> dict:
    """Execute the snippet with its folder pointed at `folder`; its namespace and output."""
    first, rest = snippet.split("\n", 1)
    assert first == 'folder = "export"', f"the snippet's first line names the folder: {first!r}"
    assert len(snippet.strip().splitlines()) <= 10
    assert "pipelines" not in snippet and "torch" not in snippet
    namespace: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(f"folder = {str(folder)!r}\n{rest}", namespace)  # noqa: S102 - the README's code
    namespace["stdout"] = out.getvalue()
    return namespace


def readme_snippet(marker: str, what: str) -> str:
    """The ```python block after `marker` in README.md; `what`: the snippet's name and the
    constant that holds it in its test file, for the failure message."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    if marker not in text:
        pytest.fail(
            f"README.md has no {marker} line; paste the {what} under it in a ```python block"
        )
    block = re.search(r"```python\n(.*?)```", text[text.index(marker) :], re.S)
    assert block, f"README.md: no ```python block after {marker}"
    return block.group(1)
