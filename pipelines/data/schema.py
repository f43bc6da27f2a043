"""Checks a raw table against the schema declared in `conf/data/*.yaml` and puts it in the
canonical form later stages rely on: declared columns only, numeric columns as float64,
categoricals as strings, the label as 1.0 (positive) / 0.0 / NaN (missing).

On a `datasets.Dataset` (conform_dataset) the table-wide checks run once, on the column
names and the label's distinct values, and the row-wise conversion runs as a batched
`Dataset.map` over pandas batches (num_proc processes): a batch may well hold one class
only, so the class check cannot run per batch."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pipelines.errors import PipelineError
from pipelines.schema.data import SchemaConfig

if TYPE_CHECKING:
    from datasets import Dataset

LABEL = "label"  # the label column's name in every artifact after ingest
# rows per pandas batch in the batched maps: large enough that pandas' per-call overhead
# vanishes, small enough that a batch (and its copies) stays a few tens of MB
MAP_BATCH = 100_000


def conform(frame: pd.DataFrame, schema: SchemaConfig, origin: str) -> pd.DataFrame:
    _check_table(len(frame), list(frame.columns), schema, origin)
    out = conform_rows(frame, schema, origin)
    _checked_classes(frame[schema.label].dropna().map(_canonical_text), schema, origin)
    return out


def conform_dataset(
    raw: Dataset, schema: SchemaConfig, origin: str, work: Path, num_proc: int | None
) -> tuple[Dataset, dict[str, str]]:
    """`conform` for a memory-mapped dataset: (canonical dataset, label classes)."""
    from pipelines.io import WRITE_BATCH, arrow_column

    _check_table(len(raw), raw.column_names, schema, origin)
    import pyarrow.compute as pc

    label = arrow_column(raw, schema.label)
    labelled = len(label) - pc.sum(pc.is_null(label, nan_is_null=True)).as_py()
    values = pd.Series(label.unique().to_pylist(), dtype=object)
    classes = label_classes(values, schema, origin, n_labelled=labelled)
    conformed = raw.with_format("pandas").map(
        _conform_batch,
        fn_kwargs={"schema": schema, "origin": origin},
        batched=True,
        batch_size=MAP_BATCH,
        with_indices=True,
        num_proc=num_proc,
        remove_columns=raw.column_names,
        cache_file_name=str(work / "conformed.arrow"),
        load_from_cache_file=False,
        writer_batch_size=WRITE_BATCH,
        new_fingerprint="conformed",
        desc="conform",
    )
    return conformed.with_format(None), classes


def _conform_batch(
    frame: pd.DataFrame, indices: list[int], schema: SchemaConfig, origin: str
) -> pd.DataFrame:
    return conform_rows(frame, schema, origin, first_row=indices[0] if indices else 0)


def _check_table(n_rows: int, columns: list[str], schema: SchemaConfig, origin: str) -> None:
    if not n_rows:
        raise PipelineError(f"{origin}: the table is empty (expected at least one row)")
    _require_columns(columns, schema, origin)
    if not schema.features:
        raise PipelineError(
            f"{origin}: no features declared: set 'data.schema.numeric' and/or "
            "'data.schema.categorical'"
        )


def conform_rows(
    frame: pd.DataFrame, schema: SchemaConfig, origin: str, first_row: int = 0
) -> pd.DataFrame:
    """The row-wise part of `conform`; `first_row` is the frame's offset in the table, so an
    error names the table's row, not the batch's."""
    out = pd.DataFrame(index=frame.index)
    for column in schema.id_columns:
        ids = frame[column]
        # mixed int/str ids (common in JSON) cannot be written to Parquet as one type
        out[column] = ids if pd.api.types.is_numeric_dtype(ids) else ids.astype("string")
    if schema.time_column:
        out[schema.time_column] = _as_time(frame[schema.time_column], schema.time_column, origin)
    for column in schema.numeric:
        out[column] = numeric_column(frame[column], column, origin, first_row=first_row)
    for column in schema.categorical:
        out[column] = frame[column].astype("string")
    out[LABEL] = _as_label(frame[schema.label], schema, origin)
    return out.reset_index(drop=True)


def check_label_column(columns: list[str], schema: SchemaConfig, origin: str) -> None:
    """The label, time and id columns are present (before features are inferred from the
    others): fails naming the first missing one and its config key."""
    _require_columns(columns, dataclasses.replace(schema, numeric=[], categorical=[]), origin)


def _require_columns(columns: list[str], schema: SchemaConfig, origin: str) -> None:
    declared = {
        "data.schema.label": [schema.label],
        "data.schema.numeric": schema.numeric,
        "data.schema.categorical": schema.categorical,
        "data.schema.id_columns": schema.id_columns,
        "data.schema.time_column": [schema.time_column] if schema.time_column else [],
    }
    for key, wanted in declared.items():
        missing = [c for c in wanted if c not in columns]
        if missing:
            available = ", ".join(map(str, columns[:12]))
            more = " ..." if len(columns) > 12 else ""
            raise PipelineError(
                f"{origin}: column {missing[0]!r} ({key}) not found; "
                f"the table has: {available}{more}"
            )


def numeric_column(
    series: pd.Series,
    column: str,
    origin: str,
    key: str = "data.schema.numeric",
    first_row: int = 0,
) -> pd.Series:
    """`series` as float64; a value that is not a number stops the run naming the file, the
    column, the config key that declared it numeric, the value and its row."""
    if pd.api.types.is_bool_dtype(series):
        return series.astype("float64")
    converted = pd.to_numeric(series, errors="coerce")
    bad = converted.isna() & series.notna()
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise PipelineError(
            f"{origin}: column {column!r} must be numeric ({key}), "
            f"found {series.iloc[row]!r} at row {first_row + row}"
        )
    return converted.astype("float64")


def _as_time(series: pd.Series, column: str, origin: str) -> pd.Series:
    try:
        return pd.to_datetime(series)
    except (ValueError, TypeError):
        raise PipelineError(
            f"{origin}: column {column!r} (data.schema.time_column) must hold timestamps"
        ) from None


def label_classes(
    series: pd.Series, schema: SchemaConfig, origin: str, n_labelled: int | None = None
) -> dict[str, str]:
    """The label's two observed values as text: {"positive": ..., "negative": ...} (the model
    card's label map names the negative class by the value the table has, such as 'good')."""
    positive = _canonical_text(schema.positive_class)
    classes = _checked_classes(series.dropna().map(_canonical_text), schema, origin, n_labelled)
    negative = [c for c in classes if c != positive]  # none only when no row is labelled
    return {"positive": positive, "negative": negative[0] if negative else None}


def _as_label(series: pd.Series, schema: SchemaConfig, origin: str) -> pd.Series:
    """1.0 / 0.0 / NaN; the classes are checked on the whole table (conform, conform_dataset)."""
    observed = series.dropna()
    positive = _canonical_text(schema.positive_class)
    # canonicalise the distinct values only: a Python call per row costs ~2 us, 20 s at 10M
    positives = [v for v in observed.drop_duplicates().tolist() if _canonical_text(v) == positive]
    label = pd.Series(float("nan"), index=series.index, dtype="float64")
    label.loc[observed.index] = observed.isin(positives).astype("float64")
    return label


def _checked_classes(
    as_text: pd.Series, schema: SchemaConfig, origin: str, n_labelled: int | None = None
) -> list[str]:
    """The label's observed classes: exactly two, one of them data.schema.positive_class.
    `n_labelled`: the labelled rows when `as_text` holds only the distinct values."""
    positive = _canonical_text(schema.positive_class)
    classes = sorted(set(as_text))
    if len(classes) > 2:
        raise PipelineError(
            f"{origin}: label column {schema.label!r} must be binary, found {len(classes)} "
            f"classes: {', '.join(classes[:5])}"
        )
    if len(classes) == 1:
        raise PipelineError(
            f"{origin}: label column {schema.label!r} has one class ({classes[0]!r}) in "
            f"{len(as_text) if n_labelled is None else n_labelled} labelled rows: two are needed, "
            f"data.schema.positive_class={schema.positive_class!r} and one other"
        )
    if positive not in classes and classes:
        raise PipelineError(
            f"{origin}: label column {schema.label!r} has no value equal to "
            f"data.schema.positive_class={schema.positive_class!r}; values are {', '.join(classes)}"
        )
    return classes


def _canonical_text(value: object) -> str:
    """'1', 1, 1.0 and True all name the same class."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()
