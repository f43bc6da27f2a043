"""The config reference, generated from the structured-config schema: every key with its type,
default, range and meaning. The meaning is the key's attribute docstring (the string right
under the field in its dataclass); a key without one fails the docs build."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import textwrap
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from pipelines.config import CHOICES, LIST_CHOICES, PipelineConfig
from pipelines.schema.fields import Bounds
from pipelines.serve.config import ServeFile

REPO = Path(__file__).resolve().parent.parent


class UndocumentedKeys(Exception):
    """Schema keys with no description: the reference cannot be complete."""


@dataclasses.dataclass(frozen=True)
class KeyDoc:
    key: str
    type: str
    default: str
    range: str
    meaning: str
    section: bool  # a group of keys (a nested dataclass), not a value


@cache
def attribute_docs(cls: type) -> dict[str, str]:
    """{field name: the string literal written right under it in the class body}, for the
    fields the class declares and those it inherits (a base class's own docstrings)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or not dataclasses.is_dataclass(klass):
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        body = tree.body[0].body  # type: ignore[attr-defined]
        for node, after in zip(body, body[1:], strict=False):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def class_doc(cls: type) -> str:
    """The class's own docstring; "" for the signature @dataclass writes when there is none."""
    doc = " ".join((cls.__doc__ or "").split())
    return "" if doc.startswith(f"{cls.__name__}(") else doc


def _default(spec: dataclasses.Field) -> Any:
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    return None if spec.default is dataclasses.MISSING else spec.default


def _shown(value: Any) -> str:
    """A value as YAML/JSON writes it (null, true, "text", [1, 2])."""
    return json.dumps(value)


def _number(value: float) -> str:
    """Exact for integers (2**32 as 4294967296, not 4.29e+09), shortest form otherwise."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _range(key: str, spec: dataclasses.Field) -> str:
    bounds: Bounds | None = spec.metadata.get("bounds")
    if bounds is not None:
        limits = (("≥", bounds.ge), (">", bounds.gt), ("≤", bounds.le), ("<", bounds.lt))
        return " and ".join(f"{op} {_number(n)}" for op, n in limits if n is not None)
    if key in CHOICES:
        return "one of " + ", ".join(CHOICES[key])
    if key in LIST_CHOICES:
        return "items each one of " + ", ".join(LIST_CHOICES[key])
    return ""


def key_docs(cls: type, prefix: str = "") -> list[KeyDoc]:
    """Every key under `cls`, depth first, in declaration order."""
    rows = []
    docs = attribute_docs(cls)
    for spec in dataclasses.fields(cls):
        key = f"{prefix}{spec.name}"
        default = _default(spec)
        nested = dataclasses.is_dataclass(default)
        meaning = docs.get(spec.name, "")
        if nested and not meaning:
            meaning = class_doc(type(default))
        type_name = type(default).__name__ if nested else str(spec.type)
        rows.append(
            KeyDoc(
                key=key,
                type=type_name,
                default="" if nested else _shown(default),
                range="" if nested else _range(key, spec),
                meaning=meaning,
                section=nested,
            )
        )
        if nested:
            rows.extend(key_docs(type(default), f"{key}."))
    return rows


def all_key_docs() -> list[KeyDoc]:
    return key_docs(PipelineConfig) + key_docs(ServeFile)


def undocumented(rows: list[KeyDoc]) -> list[str]:
    return [row.key for row in rows if not row.meaning]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _composed(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) if path.is_file() else {}


def _lookup(tree: dict[str, Any], key: str) -> Any:
    node: Any = tree
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return dataclasses.MISSING
        node = node[part]
    return node


def _table(rows: list[KeyDoc], composed: dict[str, Any]) -> list[str]:
    out = [
        "| key | type | default | range | `make run` value | meaning |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        value = _lookup(composed, row.key)
        used = "" if value is dataclasses.MISSING else _shown(value)
        used = "" if used == row.default else f"`{_cell(used)}`"
        name = row.key.rpartition(".")[2]
        out.append(
            f"| `{name}` | `{_cell(row.type)}` | `{_cell(row.default)}` | {_cell(row.range)} "
            f"| {used} | {_cell(row.meaning)} |"
        )
    return out


def render() -> str:
    """The reference page's body; raises UndocumentedKeys naming every key with no meaning."""
    rows = all_key_docs()
    missing = undocumented(rows)
    if missing:
        raise UndocumentedKeys(
            "config keys without a description (write a docstring under the field in its "
            "dataclass): " + ", ".join(missing)
        )
    composed = {
        **_composed(REPO / "params.yaml"),
        **_composed(REPO / "conf" / "serve" / "default.yaml"),
    }
    sections = {"": "Top-level keys of the pipeline config (`conf/config.yaml`)."}
    sections.update({row.key: row.meaning for row in rows if row.section})
    out = []
    for section, meaning in sections.items():
        keys = [r for r in rows if not r.section and r.key.rpartition(".")[0] == section]
        if not keys:
            out += ["", f"{'#' * min(section.count('.') + 2, 4)} `{section}`", "", meaning, ""]
            continue
        title = f"`{section}`" if section else "Top level"
        out += ["", f"{'#' * min(section.count('.') + 2, 4)} {title}", "", meaning, ""]
        out += _table(keys, composed)
    return "\n".join(out).strip() + "\n"
