"""ingest: source (simulator, file or packaged dataset) -> validated train/val/test Parquet."""

from __future__ import annotations

from pipelines.config import PipelineConfig, to_container
from pipelines.data.schema import conform, label_classes
from pipelines.data.sources import load_source
from pipelines.data.split import split_frame
from pipelines.io import staged_outputs, write_json, write_parquet
from pipelines.layout import Layout
from pipelines.progress import stage_steps
from stages._cli import main


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, int]:
    data = cfg.data
    with stage_steps("ingest", 3) as step:
        raw, origin = load_source(data.source, cfg.seed)
        step(f"read {len(raw)} rows from {origin}")
        table = conform(raw, data.schema, origin)
        classes = label_classes(raw[data.schema.label], data.schema, origin)
        step("schema checked")
        splits = split_frame(table, data.split, data.schema, cfg.seed)
        step(f"split by {data.split.method}")
    rows = {name: len(part) for name, part in splits.items()}
    with staged_outputs(layout.staging, layout.ingested) as (out,):
        for name, part in splits.items():
            write_parquet(layout.split(out, name), part)
        write_json(
            out / "schema.json",
            {
                "origin": origin,
                "rows": rows,
                "schema": to_container(data.schema),
                # the label's values as the source has them (the label column is 1/0 after)
                "label_classes": classes,
            },
        )
    return rows


if __name__ == "__main__":
    main("ingest", run)
