"""Feature columns for a table whose config declares none (or asks: `data.schema.infer`).

Each column that is not the label, the time column, an id column or the sequence key is read
once (Arrow compute over the memory-mapped table) and decided by its type and cardinality:

- numbers (integers, floats) are numeric, booleans and strings categorical;
- left out, each with a note: a constant column (one value: it cannot inform a model), an
  id-like one (every value distinct: a string, or integers named like an id or counting up
  by one: a row key, which a model would memorise), a string column with more than
  `data.schema.max_categories` distinct values (free text or a key: one-hot would explode),
  and columns of other types (timestamps, lists: declare them or derive features first).

Columns a config declares keep their declaration; inference only fills in the others. The
result is printed by ingest and written into data/ingested/schema.json (`schema` and
`inferred`), so the run is reproducible and the later stages use exactly these lists
(`stage_schema`).
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any

from pipelines.errors import PipelineError
from pipelines.schema.data import SchemaConfig

if TYPE_CHECKING:
    import pyarrow as pa
    from datasets import Dataset

    from pipelines.config import PipelineConfig
    from pipelines.layout import Layout

# a column name that says "identifier": id, customer_id, order-key, UUID; customerId, CustomerID
_ID_NAME = re.compile(r"(^|[_\W])(id|uuid|guid|key)$", re.IGNORECASE)
_CAMEL_ID = re.compile(r"[a-z](Id|ID)$")


def wants_inference(schema: SchemaConfig) -> bool:
    """Inference runs when asked, or when no feature column is declared."""
    return bool(schema.infer) or not (schema.numeric or schema.categorical)


def infer_schema(raw: Dataset, schema: SchemaConfig, origin: str) -> tuple[SchemaConfig, dict]:
    """(the schema with numeric and categorical filled in, what was inferred and why):
    {"numeric": [...], "categorical": [...], "left_out": {column: reason}}, columns in the
    table's order."""
    from pipelines.io import arrow_column

    reserved = {
        schema.label,
        schema.time_column,
        schema.sequence_key,
        *schema.id_columns,
        *schema.numeric,
        *schema.categorical,
    }
    numeric, categorical = list(schema.numeric), list(schema.categorical)
    inferred: dict[str, Any] = {"numeric": [], "categorical": [], "left_out": {}}
    for column in raw.column_names:
        if column in reserved:
            continue
        kind, reason = _decide(column, arrow_column(raw, column), schema.max_categories)
        if kind == "numeric":
            numeric.append(column)
        elif kind == "categorical":
            categorical.append(column)
        else:
            inferred["left_out"][column] = reason
            continue
        inferred[kind].append(column)
    if not numeric and not categorical:
        notes = "; ".join(f"{c}: {why}" for c, why in inferred["left_out"].items()) or "none"
        raise PipelineError(
            f"{origin}: no usable feature column found (left out: {notes}); declare "
            "'data.schema.numeric' and/or 'data.schema.categorical'"
        )
    resolved = dataclasses.replace(schema, numeric=numeric, categorical=categorical)
    return resolved, inferred


def _decide(name: str, values: pa.ChunkedArray, max_categories: int) -> tuple[str, str]:
    """("numeric" | "categorical" | "left_out", the note for a column left out)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = values.type
    present = values.drop_null()
    if pa.types.is_floating(kind):
        present = present.filter(pc.invert(pc.is_nan(present)))
    distinct = pc.count_distinct(present).as_py() if len(present) else 0
    if distinct <= 1:
        return "left_out", "constant (one value or none)"
    if pa.types.is_boolean(kind):
        return "categorical", ""
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        if pa.types.is_integer(kind) and distinct == len(present):
            low, high = pc.min(present).as_py(), pc.max(present).as_py()
            if _ID_NAME.search(name) or _CAMEL_ID.search(name) or high - low == len(present) - 1:
                return "left_out", f"id-like (all {distinct} values distinct integers)"
        return "numeric", ""
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        if distinct == len(present):
            return "left_out", f"id-like (all {distinct} values distinct)"
        if distinct > max_categories:
            return "left_out", (
                f"{distinct} distinct strings > data.schema.max_categories {max_categories} "
                "(free text or a key)"
            )
        return "categorical", ""
    return "left_out", f"type {kind} is neither a number nor a category"


def describe(inferred: dict, origin: str) -> str:
    """What was inferred, for the stage's output (a few lines)."""
    lines = [f"ingest: data.schema inferred from {origin} (written to schema.json):"]
    for kind in ("numeric", "categorical"):
        columns = inferred[kind]
        lines.append(f"  {kind} ({len(columns)}): {', '.join(columns) or '-'}")
    for column, reason in inferred["left_out"].items():
        lines.append(f"  left out {column}: {reason}")
    return "\n".join(lines)


def stage_schema(cfg: PipelineConfig, layout: Layout) -> SchemaConfig:
    """The schema a stage after ingest works with: the config's, or, when ingest inferred the
    feature lists, the lists ingest wrote into schema.json."""
    if not wants_inference(cfg.data.schema):
        return cfg.data.schema
    from pipelines.io import read_json

    path = layout.schema_file
    if not path.is_file():
        raise PipelineError(f"{path}: not found; expected ingest's output (run ingest first)")
    written = read_json(path).get("schema") or {}
    numeric, categorical = written.get("numeric"), written.get("categorical")
    if not isinstance(numeric, list) or not isinstance(categorical, list):
        raise PipelineError(
            f"{path}: keys 'schema.numeric' and 'schema.categorical' missing; expected the "
            "feature lists ingest inferred (rerun ingest)"
        )
    return dataclasses.replace(cfg.data.schema, numeric=numeric, categorical=categorical)
