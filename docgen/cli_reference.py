"""The CLI of every entry point, from the entry points themselves: each argparse program's
`--help`, Hydra's group list for train.py, the module docstring for the ones that take bare
overrides, and the Makefile's targets with their comments."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# (what a user types, how to run it: "module:<name>" or "script:<path>")
ARGPARSE = [
    ("python -m stages.<stage>", "module:stages.train"),
    ("python -m pipelines.serve", "module:pipelines.serve"),
    ("python -m pipelines.compare", "module:pipelines.compare"),
    ("python -m pipelines.data.examples", "module:pipelines.data.examples"),
    *[
        (f"python benchmarks/{name}.py", f"script:benchmarks/{name}.py")
        for name in (
            "compression",
            "data_scale",
            "gpu",
            "image_int8",
            "inference",
            "pipeline",
            "pruning",
            "serving",
            "text_int8",
            "training",
        )
    ],
]
# entry points that take Hydra-style overrides and no options: their module docstring
BARE = [
    ("python -m pipelines.compose", "pipelines.compose"),
    ("python -m pipelines.summary", "pipelines.summary"),
    ("python -m pipelines.zero_check", "pipelines.zero_check"),
]


def _help_of(target: str) -> str:
    """`--help` of one argparse entry point, run in this process (the imports are shared)."""
    kind, name = target.split(":", 1)
    out = io.StringIO()
    argv = sys.argv
    sys.argv = [name, "--help"]
    try:
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            if kind == "module":
                runpy.run_module(name, run_name="__main__", alter_sys=True)
            else:
                sys.path.insert(0, str((REPO / name).parent))
                runpy.run_path(str(REPO / name), run_name="__main__")
    finally:
        sys.argv = argv
    return out.getvalue().strip()


def dump_helps() -> None:
    """Print {command: help} as JSON (run in a child process by `collect`)."""
    print(json.dumps({command: _help_of(target) for command, target in ARGPARSE}))


def _output_of(*args: str) -> str:
    """Stdout of `python <args>` run from the repository root, 100 columns wide."""
    env = {**os.environ, "COLUMNS": "100", "PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": "1"}
    done = subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        raise RuntimeError(f"python {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def collect() -> dict[str, str]:
    """Every entry point's help text; one child process for argparse, one for train.py."""
    dumped = _output_of("-c", "from docgen.cli_reference import dump_helps; dump_helps()")
    helps: dict[str, str] = json.loads(dumped.strip().splitlines()[-1])
    hydra = _output_of("train.py", "--help")
    helps["python train.py"] = hydra.split("== Config ==")[0].strip()
    for command, module in BARE:
        source = (REPO / (module.replace(".", "/") + ".py")).read_text()
        helps[command] = re.match(r'"""(.*?)"""', source, re.S).group(1).strip()  # type: ignore[union-attr]
    return helps


def make_targets(makefile: Path) -> list[tuple[str, str]]:
    """(target, its comment) for each phony target, from the comment lines above its rule or
    the Makefile's header."""
    text = makefile.read_text().splitlines()
    phony = re.search(r"^\.PHONY:(.*)$", "\n".join(text), re.M)
    names = phony.group(1).split() if phony else []
    header = {
        m.group(1): m.group(2).strip()
        for line in text
        if (m := re.match(r"#\s+make (\w+)\s+(.*)", line))
    }
    found = []
    for i, line in enumerate(text):
        target = line.split(":")[0]
        if target in names and ":" in line and not line.startswith("\t"):
            comments = []
            j = i - 1
            while j >= 0 and text[j].startswith("#"):
                comments.insert(0, text[j].lstrip("# ").strip())
                j -= 1
            found.append((target, header.get(target) or " ".join(comments)))
    return found


def render() -> str:
    helps = collect()
    out = ["## make targets", "", "| target | what it does |", "| --- | --- |"]
    for target, comment in make_targets(REPO / "Makefile"):
        escaped = comment.replace("|", "\\|").replace("[", "\\[")
        out.append(f"| `make {target}` | {escaped} |")
    order = ["python train.py", *[c for c, _ in ARGPARSE], *[c for c, _ in BARE]]
    for command in order:
        out += ["", f"## `{command}`", "", "```text", helps[command], "```"]
    return "\n".join(out) + "\n"
