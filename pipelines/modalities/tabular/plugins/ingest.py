"""The tabular ingest stage: source (simulator, file, packaged or hub dataset) -> validated
train/val/test
splits, one memory-mapped Arrow file each (Hugging Face `datasets`; see pipelines/io.py)."""

from __future__ import annotations

from pipelines.config import PipelineConfig
from pipelines.core.ingest import split_and_publish
from pipelines.data.schema import check_label_column, conform_dataset
from pipelines.data.schema_inference import describe, infer_schema, wants_inference
from pipelines.data.sources import load_source
from pipelines.io import scratch_dir
from pipelines.layout import Layout
from pipelines.progress import stage_steps


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, int]:
    data = cfg.data
    # the scratch folder holds the raw and conformed Arrow files the splits are cut from;
    # it goes when the stage ends, after the splits were written (or nothing was published)
    with scratch_dir(layout.staging) as work, stage_steps("ingest", 4) as step:
        raw, origin = load_source(data.source, cfg.seed, work)
        step(f"read {len(raw)} rows from {origin}")
        schema, facts = data.schema, {}
        if wants_inference(schema):
            check_label_column(raw.column_names, schema, origin)
            schema, facts["inferred"] = infer_schema(raw, schema, origin)
            print(describe(facts["inferred"], origin))
        table, classes = conform_dataset(raw, schema, origin, work, data.num_proc)
        del raw  # unmaps the raw file: its pages no longer count against this process
        step("schema checked")
        # the label's values as the source has them (the label column is 1/0 after)
        facts["label_classes"] = classes
        return split_and_publish(cfg, layout, table, origin, step, facts, schema)
