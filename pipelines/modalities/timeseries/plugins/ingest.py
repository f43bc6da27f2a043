"""ingest for series: the machine-signal simulator, a UEA/UCR set aeon ships, a .ts file or a
long-format CSV/Parquet file -> the canonical series table (one row per series), split by
series (windows are cut later, so no series reaches two splits) or by time (each series cut in
three parts, pipelines.modalities.timeseries.timesplit), and schema.json with the label map,
the channels and the declared sampling rate.

An archive with its own test division keeps it (the published figures are on that test set)
unless data.split.method = time; val is then drawn, stratified, from its train series. Other
sources follow data.split."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pipelines.config import PipelineConfig, to_container
from pipelines.core.ingest import check_simulator_rows, split_and_publish
from pipelines.errors import PipelineError
from pipelines.io import no_cache_files, publish_splits
from pipelines.layout import Layout
from pipelines.modalities.timeseries.series import LABEL
from pipelines.progress import stage_steps

if TYPE_CHECKING:
    from datasets import Dataset


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, int]:
    data = cfg.data
    with stage_steps("ingest", 4) as step, no_cache_files():
        table, origin, n_train = load_series(cfg)
        step(f"read {len(table)} series from {origin}")
        classes = sorted(set(table[LABEL]))
        if len(classes) < 2:
            raise PipelineError(f"{origin}: {len(classes)} class(es); expected at least 2")
        step(f"{len(classes)} classes")
        facts = {
            "modality": "timeseries",
            "classes": classes,
            "channels": list(data.timeseries.channels),
            "sampling_rate_hz": data.timeseries.sampling_rate_hz,
        }
        if data.split.method == "time":
            from pipelines.modalities.timeseries.timesplit import split_in_time

            split = data.split
            table, splits, empty = split_in_time(table, split.val_fraction, split.test_fraction)
            facts["time_split"] = {"parts_without_samples": empty}
            step("each series cut in time: train, then val, then test")
        elif n_train is None:
            return split_and_publish(cfg, layout, table, origin, step, facts)
        else:
            splits = archive_split(table, n_train, data.split.val_fraction, cfg.seed)
            step("archive train/test kept, val drawn from train")
        about = {"origin": origin, "schema": to_container(data.schema), **facts}
        rows = publish_splits(layout.staging, layout.ingested, table, splits, about)
        step("splits written")
        return rows


def load_series(cfg: PipelineConfig) -> tuple[Dataset, str, int | None]:
    from pipelines.modalities.timeseries import sources
    from pipelines.modalities.timeseries.simulator import simulate_series

    source, settings = cfg.data.source, cfg.data.timeseries
    if source.kind == "simulator":
        check_simulator_rows(source, "series")
        sources.check_channels(3, cfg.data, "the machine simulator")
        table = simulate_series(
            source.rows, cfg.seed, settings.simulator, settings.sampling_rate_hz
        )
        return table, "simulator", None
    if source.kind in ("aeon", "ts"):
        return sources.read_archive(cfg.data)
    if source.kind == "file":
        return (*sources.read_long_format(cfg.data), None)
    raise PipelineError(
        f"config key 'data.source.kind' = {source.kind!r} with data.modality = timeseries: "
        "expected simulator, aeon, ts or file"
    )


def archive_split(
    table: Dataset, n_train: int, val_fraction: float, seed: int
) -> dict[str, np.ndarray]:
    """The archive's test series as test; val_fraction of its train series, stratified by
    class, as val."""
    from sklearn.model_selection import train_test_split

    labels = np.asarray(table[LABEL][:n_train])
    train, val = train_test_split(
        np.arange(n_train), test_size=val_fraction, stratify=labels, random_state=seed
    )
    return {
        "train": np.sort(train),
        "val": np.sort(val),
        "test": np.arange(n_train, len(table)),
    }
