"""A benchmark's recorded results file (`benchmarks/results/<name>.json`) as Markdown tables:
the run's own facts (command, machine) first, then one table per section. A section whose
entries share their keys (variants, widths, runs) becomes one row per entry; anything else
is flattened to dotted keys and values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

Scalar = str | int | float | bool | None


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _shown(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    elif _scalar(value):
        text = "null" if value is None else str(value)
    else:
        text = json.dumps(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flat(item, f"{prefix}{key}."))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = {}
        for i, item in enumerate(value):
            out.update(_flat(item, f"{prefix}{i}."))
        return out
    return {prefix.rstrip("."): value}


def _rows_of(section: Any) -> list[tuple[str, dict[str, Any]]] | None:
    """(name, flat fields) per entry when the section is a collection of like records."""
    if isinstance(section, dict):
        entries = list(section.items())
    elif isinstance(section, list):
        entries = [(str(i), v) for i, v in enumerate(section)]
    else:
        return None
    if len(entries) < 2 or not all(isinstance(v, dict) for _, v in entries):
        return None
    flat = [(name, _flat(v)) for name, v in entries]
    columns = [set(f) for _, f in flat]
    if len(set.union(*columns)) > 20 or len(set.intersection(*columns)) < 1:
        return None
    return flat


def _record_table(flat: list[tuple[str, dict[str, Any]]]) -> list[str]:
    columns: list[str] = []
    for _, fields in flat:
        columns += [c for c in fields if c not in columns]
    out = ["| | " + " | ".join(columns) + " |", "| --- |" + " --- |" * len(columns)]
    for name, fields in flat:
        cells = [_shown(fields[c]) if c in fields else "" for c in columns]
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    return out


def _pairs_table(pairs: dict[str, Any]) -> list[str]:
    out = ["| key | value |", "| --- | --- |"]
    out += [f"| `{k}` | {_shown(v)} |" for k, v in pairs.items()]
    return out


def _section(name: str, value: Any, depth: int) -> list[str]:
    """A section as a table of records, or its plain values as a table and each nested
    mapping as a section of its own (up to three levels, then flattened)."""
    out = [f"**{name}**", ""]
    records = _rows_of(value)
    if records:
        return out + _record_table(records) + [""]
    if isinstance(value, dict) and depth < 3:
        plain = {k: v for k, v in value.items() if not isinstance(v, dict) or not v}
        nested = {k: v for k, v in value.items() if k not in plain}
        if nested:
            if plain:
                out += _pairs_table(_flat(plain)) + [""]
            for key, child in nested.items():
                out += _section(f"{name}.{key}", child, depth + 1)
            return out
    return out + _pairs_table(_flat(value)) + [""]


def render(path: Path, repo: Path) -> str:
    results = json.loads(path.read_text())
    facts = {
        k: v
        for k, v in results.items()
        if not isinstance(v, dict | list) or (isinstance(v, list) and all(_scalar(i) for i in v))
    }
    out = [f"Recorded in `{path.relative_to(repo)}` (rendered by the docs build).", ""]
    if facts:
        out += _pairs_table(facts) + [""]
    for name, section in results.items():
        if name not in facts:
            out += _section(name, section, 1)
    return "\n".join(out)
