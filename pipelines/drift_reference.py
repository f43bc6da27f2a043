"""The training reference profile the server measures input drift against: per feature, bin
edges and the train split's share of rows in each bin, written into the export folder.

Kept free of torch and of the server: the export stage writes the profile and the server reads
it, so the server's bins are exactly the export's. The profile stage's train-vs-test drift
gate (pipelines/profiling.py) uses the same formula (`psi`, with its smoothing) and the same
binning rule (`bin_edges`: quantile bins, one bin per value for a feature of at most `max_bins`
distinct values, so a 0/1 flag's shift is seen). What differs is the data and the bin count:
here the edges come from the whole train split of the model's input features; the profile
bins the raw columns afresh for each comparison, with fewer bins on small splits (at least
MIN_ROWS_PER_BIN rows per bin of the smaller split), and categoricals by level with rare
levels merged. The two need not agree value for value."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.errors import PipelineError
from pipelines.io import read_columns

REFERENCE_FILE = "reference_profile.json"
FORMAT = 1


def bin_edges(values: np.ndarray, max_bins: int) -> list[float]:
    """Interior edges (the outer bins are open to +-inf, so any served value falls in a bin).

    Quantile bins, as the profile stage uses, for continuous features. A feature with at most
    `max_bins` distinct values (flags, hours, counts) gets one bin per value instead, with
    edges half-way between them: quantile edges of a 0/1 flag collapse into a single bin, and
    its PSI would then read 0 whatever the traffic does."""
    distinct = np.unique(values)
    if len(distinct) <= 1:
        return []
    if len(distinct) <= max_bins:
        return [float(v) for v in (distinct[:-1] + distinct[1:]) / 2]
    quantiles = np.quantile(values, np.linspace(0, 1, max_bins + 1)[1:-1])
    return [float(v) for v in np.unique(quantiles)]


def assign_bins(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin index per value; a value equal to an edge goes to the bin above it."""
    return np.searchsorted(edges, values, side="right")


def psi(expected_counts: np.ndarray, actual_counts: np.ndarray) -> float:
    """Population stability index with the profile stage's Laplace smoothing (+0.5 per bin),
    so an empty bin adds a bounded term rather than log(0)."""
    e = (expected_counts + 0.5) / (expected_counts.sum() + 0.5 * len(expected_counts))
    a = (actual_counts + 0.5) / (actual_counts.sum() + 0.5 * len(actual_counts))
    return float(np.sum((a - e) * np.log(a / e)))


def reference_profile(x: np.ndarray, features: list[str], max_bins: int = 10) -> dict[str, Any]:
    """Profile of a [rows, features] matrix in the order the model reads its inputs."""
    if x.ndim != 2 or x.shape[1] != len(features):
        raise PipelineError(
            f"reference profile: expected a [rows, {len(features)}] matrix, got {list(x.shape)}"
        )
    columns: dict[str, Any] = {}
    for j, name in enumerate(features):
        values = x[:, j].astype(np.float64)
        values = values[np.isfinite(values)]
        if len(values) == 0:
            raise PipelineError(f"reference profile: feature {name!r} has no finite value")
        # a feature constant in train (every image of one size) still gets bins below, at
        # and above its value, so traffic that differs shows as drift rather than one bin
        edges = bin_edges(values, max_bins) or _around(float(values[0]))
        edges = _point_masses_apart(values, edges, max_bins)
        counts = np.bincount(assign_bins(values, np.asarray(edges)), minlength=len(edges) + 1)
        columns[name] = {
            "edges": edges,
            "counts": [int(c) for c in counts],
            "proportions": [float(c) / len(values) for c in counts],
        }
    return {"format": FORMAT, "rows": int(len(x)), "max_bins": max_bins, "features": columns}


def _around(value: float) -> list[float]:
    """Edges of three bins: below `value`, exactly `value`, above it (a value equal to an edge
    goes to the bin above it)."""
    return [value, float(np.nextafter(value, np.inf))]


def _point_masses_apart(values: np.ndarray, edges: list[float], max_bins: int) -> list[float]:
    """Quantile edges that land on a value many rows share (a rate that is mostly 0, a
    count's 0) get a second edge just above it, so that value is a bin of its own: else it
    shares a bin with everything above it, and traffic moving off it reads as no drift."""
    heavy = [e for e in edges if np.count_nonzero(values == e) > len(values) / max_bins]
    above = [float(np.nextafter(e, np.inf)) for e in heavy]
    return sorted(set(edges) | set(above))


def write_reference_profile(
    folder: Path, train_split: Path, features: list[str], max_bins: int = 10
) -> Path:
    """Profile the train split (the clean one: resampled rows are not what traffic looks
    like) and write it as `folder/reference_profile.json`."""
    table = read_columns(train_split, features)
    x = np.column_stack([table.column(f).to_numpy().astype(np.float64) for f in features])
    return write_profile(folder, x, features, train_split.name, max_bins)


def write_profile(
    folder: Path, x: np.ndarray, features: list[str], source: str, max_bins: int = 10
) -> Path:
    """Write the profile of a [rows, features] matrix as `folder/reference_profile.json`:
    a table's model inputs, or what a text or image drift gauge measures per input
    (pipelines.modalities.{text,image}.drift_features)."""
    profile = {"source": source, **reference_profile(x, features, max_bins)}
    path = folder / REFERENCE_FILE
    path.write_text(json.dumps(profile, indent=1))
    return path


def read_reference_profile(path: Path, features: list[str]) -> dict[str, Any]:
    """Read and check a profile against the model's feature list; a mismatch names the key."""
    try:
        profile = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise PipelineError(f"{path}: not a readable reference profile: {err}") from None
    columns = profile.get("features") if isinstance(profile, dict) else None
    if not isinstance(columns, dict):
        raise PipelineError(f"{path}: key 'features' missing or not an object")
    missing = [f for f in features if f not in columns]
    if missing:
        raise PipelineError(f"{path}: no reference for model input(s) {', '.join(missing)}")
    for name in features:
        column = columns[name]
        edges, counts = column.get("edges"), column.get("counts")
        if (
            not isinstance(edges, list)
            or not isinstance(counts, list)
            or len(counts) != len(edges) + 1
            or not all(isinstance(e, int | float) and math.isfinite(e) for e in edges)
        ):
            raise PipelineError(
                f"{path}: key 'features.{name}': expected finite 'edges' and len(edges) + 1 "
                "'counts'"
            )
    return profile
