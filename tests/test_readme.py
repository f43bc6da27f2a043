"""The README's commands, run exactly as written (copied out of README.md, not retyped)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.small import REPO, copy_project, env


def readme_block(heading: str) -> list[str]:
    """The commands of the first ```bash block after `heading`, continuation lines joined."""
    text = (REPO / "README.md").read_text()
    section = text[text.index(heading) :]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, f"no bash block under {heading!r}"
    joined = block.group(1).replace("\\\n", " ")
    return [line.split("  #")[0].strip() for line in joined.splitlines() if line.strip()]


@pytest.mark.slow
def test_your_own_table_runs_end_to_end_exactly_as_the_readme_says(tmp_path: Path) -> None:
    clone = copy_project(tmp_path / "clone")
    commands = readme_block("### Your own table, with config only")
    assert len(commands) == 2 and commands[1].startswith("python train.py data=my_table")
    for command in commands:
        done = subprocess.run(
            command, shell=True, cwd=clone, env=env(), capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, f"{command}\n{done.stderr[-3000:]}"
    assert "val/auprc = " in done.stdout
    (run,) = (clone / "outputs" / "runs").iterdir()
    evaluation = json.loads((run / "metrics" / "evaluate.json").read_text())
    assert evaluation["test_rows"] == 150
    for name, metrics in evaluation["variants"].items():
        assert metrics["f1"] > 0.3, name
    card = json.loads((run / "export" / "model_card.json").read_text())
    assert 0 < card["decision_threshold"] < 1
