"""The fenced blocks of the documentation (README.md and the pages under docs/), as the tests
that run documented commands read them: by page and heading, never retyped.

A block that cannot run on a CPU machine (a CUDA GPU, a SLURM cluster) or that is a run by
hand of a long benchmark carries a marker on the line right before its opening fence:
`<!-- not-run: <the reason> -->`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.small import REPO

NOT_RUN = re.compile(r"^<!-- not-run: (.*?) -->$")
HEADING = re.compile(r"^(#{1,6}) (.+)$")
FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass(frozen=True)
class Block:
    page: Path  # relative to the repository
    heading: str  # the text of the last heading above the block ("" before any)
    lang: str
    text: str
    not_run: str | None  # the marker's reason, None when the block is meant to run
    line: int  # of the opening fence, 1-based


def doc_pages() -> list[Path]:
    """README.md and every page of the docs site."""
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def fenced_blocks(page: Path) -> list[Block]:
    """Every fenced block of `page`, in order, with its heading and not-run marker."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks, heading, i = [], "", 0
    while i < len(lines):
        line = lines[i]
        if match := HEADING.match(line):
            heading = match.group(2).strip()
        elif match := FENCE.match(line):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
            assert end is not None, f"{page}:{i + 1}: a fenced block that never closes"
            marker = NOT_RUN.match(lines[i - 1]) if i > 0 else None
            blocks.append(
                Block(
                    page=page.relative_to(REPO) if page.is_relative_to(REPO) else page,
                    heading=heading,
                    lang=match.group(1),
                    text="\n".join(lines[i + 1 : end]) + "\n",
                    not_run=marker.group(1).strip() if marker else None,
                    line=i + 1,
                )
            )
            i = end
        i += 1
    return blocks


def block_under(page: str, heading: str, lang: str = "bash") -> Block:
    """The first `lang` block under the heading whose text is `heading` on `page` (a path
    relative to the repository, e.g. docs/tutorials/your-own-table.md)."""
    path = REPO / page
    found = [b for b in fenced_blocks(path) if b.heading == heading and b.lang == lang]
    assert found, f"{page}: no ```{lang} block under the heading {heading!r}"
    return found[0]


def block_after_marker(page: str, marker: str, lang: str = "python") -> str:
    """The first `lang` block after the line `marker` (an HTML comment naming a snippet)."""
    text = (REPO / page).read_text(encoding="utf-8")
    assert marker in text, f"{page} has no {marker} line; paste the snippet under it"
    block = re.search(rf"```{lang}\n(.*?)```", text[text.index(marker) :], re.S)
    assert block, f"{page}: no ```{lang} block after {marker}"
    return block.group(1)


def commands(block: Block | str) -> list[str]:
    """The command lines of a bash block: comment lines dropped, `\\` continuations joined,
    a trailing `# comment` cut, a quoted string spanning lines (a JSON body) kept whole,
    whitespace runs read as one space."""
    text = block.text if isinstance(block, Block) else block
    found = []
    pending = ""
    for line in text.replace("\\\n", " ").splitlines():
        if pending:  # inside a quoted string that spans lines
            pending += " " + line.strip()
        elif line.strip().startswith("#"):
            continue
        else:
            pending = re.sub(r"\s+#.*$", "", line).strip()
        if pending.count("'") % 2 == 0:
            if pending:
                found.append(" ".join(pending.split()))
            pending = ""
    return found
