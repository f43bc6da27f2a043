"""The end of every modality's ingest: the canonical table cut into train/val/test by
data.split and published with schema.json, and the simulator's row floor."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pipelines.config import PipelineConfig, to_container
from pipelines.errors import PipelineError
from pipelines.io import publish_splits
from pipelines.layout import Layout
from pipelines.schema.data import SchemaConfig, SourceConfig

if TYPE_CHECKING:
    from datasets import Dataset


def check_simulator_rows(source: SourceConfig, what: str) -> None:
    """A simulated source needs rows enough for three splits (`what`: tickets, images)."""
    if not source.rows or source.rows < 100:
        raise PipelineError(
            f"config key 'data.source.rows' = {source.rows!r}: expected at least 100 "
            f"{what} for the simulator"
        )


def check_source_columns(
    raw: Dataset,
    column: str,
    column_key: str,
    label_column: str,
    origin: str,
    validate: Callable[..., None],
) -> None:
    """`validate(raw, column, label_column, origin, min_classes=2)`, the modality's column
    check, with the config key to fix added to its error: `column_key` (data.schema.text,
    data.schema.image) when the column is missing, else data.schema.label."""
    key = column_key if column not in raw.column_names else "data.schema.label"
    try:
        validate(raw, column, label_column, origin, min_classes=2)
    except PipelineError as err:
        raise PipelineError(f"{err} (config key {key})") from None


def split_and_publish(
    cfg: PipelineConfig,
    layout: Layout,
    table: Dataset,
    origin: str,
    step: Callable[[str], None],
    facts: dict[str, Any],
    schema: SchemaConfig | None = None,
) -> dict[str, int]:
    """Split `table` by data.split and write the splits and schema.json (origin, the data
    schema, `schema` when the modality resolved it further (the tables' inferred feature
    lists), and the modality's `facts`, e.g. its label map); rows per split."""
    from pipelines.data.split import split_dataset

    data = cfg.data
    splits = split_dataset(table, data.split, data.schema, cfg.seed)
    step(f"split by {data.split.method}")
    about = {"origin": origin, "schema": to_container(schema or data.schema), **facts}
    rows = publish_splits(layout.staging, layout.ingested, table, splits, about)
    step("splits written")
    return rows
