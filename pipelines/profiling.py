"""Data quality report: per-column statistics, missing rates, label balance, correlation with
the label and train-vs-test drift (PSI and Kolmogorov-Smirnov), plus the declared gates."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from pipelines.config import GatesConfig, SchemaConfig
from pipelines.data.schema import LABEL


def profile_splits(splits: dict[str, pd.DataFrame], schema: SchemaConfig) -> dict[str, Any]:
    train, test = splits["train"], splits["test"]
    everything = pd.concat(splits.values(), ignore_index=True)
    columns: dict[str, Any] = {}
    for column in schema.numeric:
        values = everything[column]
        columns[column] = {
            "kind": "numeric",
            "missing_fraction": float(values.isna().mean()),
            "mean": _finite(values.mean()),
            "std": _finite(values.std()),
            "min": _finite(values.min()),
            "p50": _finite(values.median()),
            "p99": _finite(values.quantile(0.99)),
            "max": _finite(values.max()),
            "n_unique": int(values.nunique()),
            "corr_with_label": _finite(train[column].corr(train[LABEL])),
            "drift_psi": population_stability_index(train[column], test[column]),
            "drift_ks": _ks(train[column], test[column]),
        }
    for column in schema.categorical:
        values = everything[column]
        top = values.value_counts(dropna=True).head(5)
        columns[column] = {
            "kind": "categorical",
            "missing_fraction": float(values.isna().mean()),
            "n_unique": int(values.nunique()),
            "top_values": {str(k): int(v) for k, v in top.items()},
            "drift_psi": _categorical_psi(train[column], test[column]),
        }
    label_balance = {
        name: {
            "rows": len(part),
            "positive_fraction": _finite(part[LABEL].mean()),
            "missing_label": int(part[LABEL].isna().sum()),
        }
        for name, part in splits.items()
    }
    worst_drift = max(
        (c["drift_psi"] for c in columns.values() if c["drift_psi"] is not None), default=0.0
    )
    return {
        "rows": int(len(everything)),
        "n_features": len(schema.features),
        "positive_fraction": _finite(everything[LABEL].mean()),
        "max_missing_fraction": max((c["missing_fraction"] for c in columns.values()), default=0.0),
        "max_drift_psi": worst_drift,
        "splits": label_balance,
        "columns": columns,
        "top_correlations": top_feature_correlations(train, schema.numeric),
    }


def check_gates(report: dict[str, Any], gates: GatesConfig) -> list[str]:
    """Each failed gate as one line naming the gate, the value and the bound."""
    failures = []
    if report["rows"] < gates.min_rows:
        failures.append(f"rows = {report['rows']} < data.profile.gates.min_rows = {gates.min_rows}")
    for name, column in report["columns"].items():
        if column["missing_fraction"] > gates.max_missing_fraction:
            failures.append(
                f"column {name!r} missing fraction {column['missing_fraction']:.3f} > "
                f"data.profile.gates.max_missing_fraction = {gates.max_missing_fraction}"
            )
        psi = column["drift_psi"]
        if psi is not None and psi > gates.max_drift_psi:
            failures.append(
                f"column {name!r} train-vs-test drift PSI {psi:.3f} > "
                f"data.profile.gates.max_drift_psi = {gates.max_drift_psi}"
            )
    positive = report["positive_fraction"] or 0.0
    if not gates.min_positive_fraction <= positive <= gates.max_positive_fraction:
        failures.append(
            f"label positive fraction {positive:.4f} outside data.profile.gates "
            f"[{gates.min_positive_fraction}, {gates.max_positive_fraction}]"
        )
    return failures


def population_stability_index(
    expected: pd.Series, actual: pd.Series, bins: int = 10
) -> float | None:
    """PSI over the expected sample's deciles, the drift measure credit-risk teams use."""
    expected, actual = expected.dropna().to_numpy(), actual.dropna().to_numpy()
    if len(expected) == 0 or len(actual) == 0:
        return None
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        return 0.0
    edges[0], edges[-1] = -np.inf, np.inf
    return _psi(np.histogram(expected, edges)[0], np.histogram(actual, edges)[0])


def _categorical_psi(expected: pd.Series, actual: pd.Series) -> float | None:
    categories = sorted(set(expected.dropna()) | set(actual.dropna()))
    if not categories:
        return None
    e = expected.value_counts().reindex(categories, fill_value=0).to_numpy()
    a = actual.value_counts().reindex(categories, fill_value=0).to_numpy()
    return _psi(e, a)


def _psi(expected_counts: np.ndarray, actual_counts: np.ndarray) -> float:
    eps = 1e-4
    e = np.clip(expected_counts / max(expected_counts.sum(), 1), eps, None)
    a = np.clip(actual_counts / max(actual_counts.sum(), 1), eps, None)
    return float(np.sum((a - e) * np.log(a / e)))


def _ks(expected: pd.Series, actual: pd.Series) -> float | None:
    expected, actual = expected.dropna(), actual.dropna()
    if len(expected) == 0 or len(actual) == 0:
        return None
    return float(ks_2samp(expected, actual).statistic)


def top_feature_correlations(frame: pd.DataFrame, numeric: list[str], k: int = 10) -> list[dict]:
    if len(numeric) < 2:
        return []
    corr = frame[numeric].corr().abs()
    upper = corr.where(np.triu(np.ones(corr.shape, dtype=bool), k=1)).stack()
    return [
        {"a": a, "b": b, "abs_corr": float(v)}
        for (a, b), v in upper.sort_values(ascending=False).head(k).items()
    ]


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
