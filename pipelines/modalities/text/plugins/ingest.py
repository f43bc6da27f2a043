"""ingest for text: tickets (simulator, or a file/hub dataset through the `datasets`
builders) -> canonical (text, label) splits, one memory-mapped Arrow file each, and the label
map in schema.json."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.config import PipelineConfig
from pipelines.core.ingest import check_simulator_rows, check_source_columns, split_and_publish
from pipelines.errors import PipelineError
from pipelines.io import scratch_dir
from pipelines.layout import Layout
from pipelines.modalities.text.plugins.common import (
    LABEL,
    TEXT,
    no_cache_files,
)
from pipelines.progress import stage_steps

if TYPE_CHECKING:
    from datasets import Dataset


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, int]:
    data = cfg.data
    with scratch_dir(layout.staging) as work, stage_steps("ingest", 4) as step, no_cache_files():
        raw, origin = _load_tickets(cfg, work)
        step(f"read {len(raw)} rows from {origin}")
        table, dropped = conform_tickets(raw, data.schema.text or TEXT, data.schema.label, origin)
        classes = sorted(set(table[LABEL][:]))
        step(f"{len(classes)} intents; {dropped} rows without a label dropped")
        # the label map: model output i is classes[i]
        facts = {"modality": "text", "unlabelled_rows_dropped": dropped, "classes": classes}
        return split_and_publish(cfg, layout, table, origin, step, facts)


def _load_tickets(cfg: PipelineConfig, work: Path) -> tuple[Dataset, str]:
    from pipelines.data.sources import load_source
    from pipelines.modalities.text.simulator import simulate_tickets

    source = cfg.data.source
    if source.kind == "simulator":
        check_simulator_rows(source, "tickets")
        return simulate_tickets(source.rows, cfg.seed, num_proc=cfg.data.num_proc), "simulator"
    if source.kind == "file" and source.path:
        require_utf8(Path(source.path))
    return load_source(source, cfg.seed, work)


def require_utf8(path: Path) -> None:
    """Text files must be UTF-8: a cp1252 file read as UTF-8 fails deep inside the csv/json
    builders with a byte offset and no file name."""
    from pipelines.data.file_checks import utf8_problem

    if not path.is_file() or path.suffix.lower() in (".parquet", ".arrow"):
        return
    problem = utf8_problem(path)
    if problem is not None:
        raise PipelineError(problem)


def conform_tickets(
    raw: Dataset, text_column: str, label_column: str, origin: str
) -> tuple[Dataset, int]:
    """The canonical (text, label) table: columns checked and renamed, labels as strings, rows
    without a label dropped (counted). Fails naming the column when the text column is
    missing or empty, or the label has fewer than two classes."""
    from pipelines.modalities.text.rules import validate_text_columns

    check_source_columns(
        raw, text_column, "data.schema.text", label_column, origin, validate_text_columns
    )
    table = raw.select_columns([text_column, label_column])
    labelled = table.filter(
        lambda batch: [v is not None for v in batch[label_column]], batched=True
    )
    dropped = len(table) - len(labelled)
    labelled = labelled.map(
        lambda batch: {LABEL: [str(v) for v in batch[label_column]]},
        batched=True,
        remove_columns=[label_column],
    )
    if text_column != TEXT:
        labelled = labelled.rename_column(text_column, TEXT)
    # texts may be null (the clean stage's empty rule quarantines them)
    return labelled.select_columns([TEXT, LABEL]), dropped
