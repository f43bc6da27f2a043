"""Where series come from besides the simulator: UEA/UCR archive sets the aeon package ships
(read from the installed package, never downloaded), `.ts` files, and long-format CSV/Parquet
tables (one row per sample: series id, timestamp, one column per channel, the label).

Every source gives the canonical table (pipelines.modalities.timeseries.series) and, for an
archive with its own train/test division, which rows are its test series. Bad input stops here
in one line naming the file, column or series: no timestamp column, a channel that is all
NaN, a series of one sample, a series sampled at another rate than the declared one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipelines.errors import PipelineError
from pipelines.modalities.timeseries.series import LABEL, SERIES_ID, TIME, VALUES, series_table

if TYPE_CHECKING:
    import datasets
    import pandas as pd

    from pipelines.schema.data import DataConfig

# a series whose median interval strays further than this from the declared one is sampled
# at another rate (clock jitter of a few percent is resampled by clean, not refused)
RATE_TOLERANCE = 0.1


def aeon_data_dir() -> Path:
    """The folder of UEA/UCR sets inside the installed aeon package."""
    try:
        import aeon
    except ImportError as err:
        raise PipelineError(
            "config key 'data.source.kind' = 'aeon' needs the aeon package (pip install aeon)"
        ) from err
    return Path(aeon.__file__).parent / "datasets" / "data"


def archive_files(data: DataConfig) -> tuple[Path, Path | None]:
    """(train .ts file, test .ts file or None) of data.source: an aeon set's name for
    kind=aeon, a file for kind=ts (its _TEST twin beside a _TRAIN file is the test split)."""
    source = data.source
    if source.kind == "aeon":
        folder = aeon_data_dir() / str(source.path)
        train, test = folder / f"{source.path}_TRAIN.ts", folder / f"{source.path}_TEST.ts"
        if not train.is_file():
            shipped = sorted(p.parent.name for p in aeon_data_dir().glob("*/*_TRAIN.ts"))
            raise PipelineError(
                f"config key 'data.source.path' = {source.path!r}: not a set the installed aeon "
                f"ships (with .ts files: {', '.join(shipped)})"
            )
        return train, test if test.is_file() else None
    path = Path(str(source.path))
    if not path.is_file():
        raise PipelineError(f"config key 'data.source.path' = {source.path!r}: no such .ts file")
    twin = path.with_name(path.name.replace("_TRAIN", "_TEST"))
    return path, twin if "_TRAIN" in path.name and twin.is_file() else None


def read_archive(data: DataConfig) -> tuple[datasets.Dataset, str, int | None]:
    """The canonical table of a .ts set (train series first), its origin, and the number of
    train series (rows after it are the archive's test series; None without a test file)."""
    from aeon.datasets import load_from_ts_file

    train_file, test_file = archive_files(data)
    parts = [("train", train_file)] + ([("test", test_file)] if test_file else [])
    rows: dict[str, list] = {SERIES_ID: [], LABEL: [], TIME: [], VALUES: []}
    n_train = None
    for part, path in parts:
        x, y = load_from_ts_file(str(path))
        for i, values in enumerate(x):
            values = np.asarray(values, dtype=np.float32)
            check_channels(values.shape[0], data, path)
            rows[SERIES_ID].append(f"{path.stem.split('_')[0]}-{part}-{i:04d}")
            rows[LABEL].append(str(y[i]))
            rows[TIME].append(np.arange(values.shape[1]) / data.timeseries.sampling_rate_hz)
            rows[VALUES].append(values)
        if part == "train":
            n_train = len(rows[SERIES_ID])
    return series_table(rows), f"{data.source.kind} {train_file}", n_train if test_file else None


def check_channels(count: int, data: DataConfig, where: object) -> None:
    names = data.timeseries.channels
    if count != len(names):
        raise PipelineError(
            f"{where}: {count} channel(s) per series but config key 'data.timeseries.channels' "
            f"names {len(names)} ({', '.join(names)}); expected one name per channel"
        )


def read_long_format(data: DataConfig) -> tuple[datasets.Dataset, str]:
    """A CSV/Parquet file with one row per sample -> the canonical table, one row per series."""
    import pandas as pd

    path = Path(str(data.source.path))
    if not path.is_file():
        raise PipelineError(f"config key 'data.source.path' = {data.source.path!r}: no such file")
    kind = data.source.format or path.suffix.lstrip(".").lower()
    frame = pd.read_parquet(path) if kind == "parquet" else pd.read_csv(path)
    return long_format_table(frame, data, str(path)), f"file {path}"


def long_format_table(frame: pd.DataFrame, data: DataConfig, where: str) -> datasets.Dataset:
    from pipelines.data.schema import numeric_column

    schema, channels = data.schema, data.timeseries.channels
    id_column = schema.id_columns[0] if schema.id_columns else None
    required = [
        ("data.schema.id_columns[0]", id_column),
        ("data.schema.time_column", schema.time_column),
        ("data.schema.label", schema.label),
        *(("data.timeseries.channels", c) for c in channels),
    ]
    for key, column in required:
        if not column or column not in frame.columns:
            raise PipelineError(
                f"{where}: no column {column!r} (config key '{key}'); columns: "
                f"{', '.join(map(str, frame.columns))}"
            )
    for channel in channels:
        values = numeric_column(frame[channel], channel, where, "data.timeseries.channels")
        if values.isna().all():
            raise PipelineError(f"{where}: channel column {channel!r} is all NaN")
        frame[channel] = values
    seconds = timestamps_in_seconds(frame[schema.time_column], where, schema.time_column)
    frame = frame.assign(_seconds=seconds).sort_values([id_column, "_seconds"], kind="stable")
    period = 1.0 / data.timeseries.sampling_rate_hz
    rows: dict[str, list] = {SERIES_ID: [], LABEL: [], TIME: [], VALUES: []}
    for series_id, group in frame.groupby(id_column, sort=True):
        t = group["_seconds"].to_numpy(np.float64)
        if len(t) < 2:
            raise PipelineError(
                f"{where}: series {series_id!r} has {len(t)} sample; expected at least 2 "
                "(a sampling rate needs two)"
            )
        labels = group[schema.label].dropna().unique()
        if len(labels) != 1:
            raise PipelineError(
                f"{where}: series {series_id!r} has {len(labels)} labels "
                f"({', '.join(map(str, labels[:3]))}); expected one label per series in column "
                f"{schema.label!r}"
            )
        steps = np.diff(t)
        interval = float(np.median(steps[steps > 0])) if (steps > 0).any() else 0.0
        if abs(interval - period) > RATE_TOLERANCE * period:
            rate = f"{1 / interval:g} Hz" if interval else "no time passing"
            raise PipelineError(
                f"{where}: series {series_id!r} is sampled at {rate}; expected "
                f"{data.timeseries.sampling_rate_hz:g} Hz (config key "
                "'data.timeseries.sampling_rate_hz'): mixed sampling rates"
            )
        rows[SERIES_ID].append(str(series_id))
        rows[LABEL].append(str(labels[0]))
        rows[TIME].append(t - t[0])
        rows[VALUES].append(group[channels].to_numpy(np.float32).T)
    return series_table(rows)


def timestamps_in_seconds(column: pd.Series, where: str, name: str) -> np.ndarray:
    """Numbers are seconds; anything else is parsed as timestamps."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(column):
        seconds = column.to_numpy(np.float64)
    else:
        try:
            parsed = pd.to_datetime(column)
        except (TypeError, ValueError):
            raise PipelineError(
                f"{where}: time column {name!r} holds neither seconds nor timestamps "
                f"(e.g. {column.dropna().iloc[0]!r})"
            ) from None
        seconds = (parsed - parsed.min()).dt.total_seconds().to_numpy(np.float64)
    if np.isnan(seconds).any():
        raise PipelineError(f"{where}: time column {name!r} has empty cells")
    return seconds
