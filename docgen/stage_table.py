"""The stage table from dvc.yaml: each stage's command, inputs, params and outputs."""

from __future__ import annotations

from pathlib import Path

import yaml


def _paths(entries: list) -> list[str]:
    """dvc.yaml lists plain paths and {path: options} mappings alike."""
    return [next(iter(e)) if isinstance(e, dict) else str(e) for e in entries or []]


def _codes(items: list[str]) -> str:
    return "<br>".join(f"`{item}`" for item in items) or "—"


def render(dvc_yaml: Path) -> str:
    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]
    out = [
        "| stage | command | inputs (deps) | params | outputs | metrics / plots |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, stage in stages.items():
        produced = _paths(stage.get("metrics")) + _paths(stage.get("plots"))
        out.append(
            f"| {name} | `{stage['cmd']}` | {_codes(_paths(stage.get('deps')))} "
            f"| {_codes(_paths(stage.get('params')))} | {_codes(_paths(stage.get('outs')))} "
            f"| {_codes(produced)} |"
        )
    return "\n".join(out) + "\n"
