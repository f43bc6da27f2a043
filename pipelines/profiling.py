"""Data quality report: per-column statistics, missing rates, label balance, correlation with
the label and train-vs-test drift (PSI and Kolmogorov-Smirnov), plus the declared gates."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from pipelines.data.schema import LABEL
from pipelines.drift_reference import assign_bins, bin_edges, psi
from pipelines.modalities.tabular.config import GatesConfig
from pipelines.schema.data import SchemaConfig

# fewer rows per quantile bin than this makes PSI on a random split read as drift
MIN_ROWS_PER_BIN = 20


def profile_splits(splits: dict[str, pd.DataFrame], schema: SchemaConfig) -> dict[str, Any]:
    train, test = splits["train"], splits["test"]
    everything = pd.concat(splits.values(), ignore_index=True)
    columns: dict[str, Any] = {}
    for column in schema.numeric:
        raw = everything[column]
        # +/-inf would poison every statistic below; counted here, then treated as missing
        non_finite = int(np.isinf(raw.to_numpy(dtype="float64")).sum())
        values = raw.replace([np.inf, -np.inf], np.nan)
        train_values = train[column].replace([np.inf, -np.inf], np.nan)
        test_values = test[column].replace([np.inf, -np.inf], np.nan)
        columns[column] = {
            "kind": "numeric",
            "non_finite": non_finite,
            "missing_fraction": float(raw.isna().mean()),
            "mean": _finite(values.mean()),
            "std": _finite(values.std()),
            "min": _finite(values.min()),
            "p50": _finite(values.median()),
            "p99": _finite(values.quantile(0.99)),
            "max": _finite(values.max()),
            "n_unique": int(values.nunique()),
            "corr_with_label": _finite(train_values.corr(train[LABEL])),
            "drift_psi": population_stability_index(train_values, test_values),
            "drift_ks": _ks(train_values, test_values),
        }
    for column in schema.categorical:
        values = everything[column]
        top = values.value_counts(dropna=True).head(5)
        columns[column] = {
            "kind": "categorical",
            "missing_fraction": float(values.isna().mean()),
            "n_unique": int(values.nunique()),
            "top_values": {str(k): int(v) for k, v in top.items()},
            "drift_psi": categorical_psi(train[column], test[column]),
        }
    label_balance = {
        name: {
            "rows": len(part),
            "positive_fraction": _finite(part[LABEL].mean()),
            "positives": int((part[LABEL] == 1).sum()),
            "negatives": int((part[LABEL] == 0).sum()),
            "missing_label": int(part[LABEL].isna().sum()),
        }
        for name, part in splits.items()
    }
    worst_drift = max(
        (c["drift_psi"] for c in columns.values() if c["drift_psi"] is not None), default=0.0
    )
    return {
        "rows": int(len(everything)),
        "label_column": schema.label,
        "missing_label": int(everything[LABEL].isna().sum()),
        "n_features": len(schema.features),
        "positive_fraction": _finite(everything[LABEL].mean()),
        "max_missing_fraction": max((c["missing_fraction"] for c in columns.values()), default=0.0),
        "max_drift_psi": worst_drift,
        "splits": label_balance,
        "columns": columns,
        "top_correlations": top_feature_correlations(train, schema.numeric),
    }


def check_gates(report: dict[str, Any], gates: GatesConfig) -> list[str]:
    """Each failed gate as one line naming the gate, the value and the bound. What is wrong
    with the data itself (non-finite values, missing or single-class labels) comes first: a
    drift or balance gate tripped by such a cause would name the wrong problem."""
    failures = data_defects(report, gates)
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


def data_defects(report: dict[str, Any], gates: GatesConfig) -> list[str]:
    """Problems in the data, each naming the column and what is wrong."""
    defects = []
    for name, column in report["columns"].items():
        if column.get("non_finite"):
            defects.append(
                f"column {name!r} holds {column['non_finite']} non-finite values (+inf/-inf) "
                f"in {report['rows']} rows; expected finite numbers (data.schema.numeric): "
                "fix the file, or treat them as missing before ingest"
            )
    label = report.get("label_column", LABEL)
    missing = report.get("missing_label", 0)
    if missing and missing / report["rows"] > gates.max_missing_label_fraction:
        defects.append(
            f"label column {label!r} is missing in {missing} of {report['rows']} rows "
            f"({missing / report['rows']:.1%}) > data.profile.gates.max_missing_label_fraction "
            f"= {gates.max_missing_label_fraction}; below that bound clean quarantines them "
            "(rule missing_label)"
        )
    for split, counts in report["splits"].items():
        found = [c for c in ("positives", "negatives") if counts.get(c, 1) > 0]
        if len(found) < 2:
            defects.append(
                f"label column {label!r} has one class in the {split} split "
                f"({counts.get('positives', 0)} positive, {counts.get('negatives', 0)} negative "
                "rows): two are needed; add rows of the missing class or change data.split"
            )
    return defects


def population_stability_index(
    expected: pd.Series, actual: pd.Series, max_bins: int = 10
) -> float | None:
    """PSI over quantile bins of the expected sample, the drift measure credit-risk teams use.

    Two guards keep it unbiased on small samples, where a random split must read as no
    drift: bins are fewer when the smaller sample has under MIN_ROWS_PER_BIN rows per bin,
    and counts are Laplace-smoothed (+0.5) so an empty bin adds a bounded term instead of
    log(1e-4)-sized ones."""
    expected, actual = expected.dropna().to_numpy(), actual.dropna().to_numpy()
    if len(expected) == 0 or len(actual) == 0:
        return None
    bins = int(np.clip(min(len(expected), len(actual)) // MIN_ROWS_PER_BIN, 2, max_bins))
    # the serving drift reference's binning: quantile bins, but one bin per value for a column
    # with few distinct values, whose quantile edges would collapse (a 0/1 flag moving from 30%
    # to 60% read PSI 0)
    interior = bin_edges(expected, bins)
    if not interior:
        return 0.0
    counts = [np.bincount(assign_bins(v, np.asarray(interior)), minlength=len(interior) + 1)
              for v in (expected, actual)]  # fmt: skip
    return psi(counts[0], counts[1])


def categorical_psi(expected: pd.Series, actual: pd.Series) -> float | None:
    """PSI over the column's levels, rare levels merged into one "other" bucket.

    A level is rare when its share of both samples together would put fewer than
    MIN_ROWS_PER_BIN rows of it in the smaller sample: the rule the numeric PSI's quantile
    bins follow. Each bin of a random split adds about 1/n_expected + 1/n_actual (times its
    count of levels minus one) to PSI by chance alone, so on a 1,300-row table a
    50-level column read ~0.3 with no drift, and a level seen a handful of times is mostly
    noise (and smoothing) in the log term. With rare levels merged there are at most
    n_small / MIN_ROWS_PER_BIN buckets, which caps that chance term near 1/MIN_ROWS_PER_BIN
    whatever the number of levels. The share is pooled over both samples so a level that is
    new or grown in `actual` (real drift) keeps a bucket of its own. A column whose levels are
    all rare at this sample size has one bucket and reads 0: too few rows to measure its
    drift level by level."""
    expected, actual = expected.dropna(), actual.dropna()
    if len(expected) == 0 or len(actual) == 0:
        return None
    pooled = pd.concat([expected, actual], ignore_index=True).value_counts(normalize=True)
    kept = pooled.index[pooled * min(len(expected), len(actual)) >= MIN_ROWS_PER_BIN]
    e, a = _level_counts(expected, kept), _level_counts(actual, kept)
    if e[-1] == 0 and a[-1] == 0:  # no rare level: no "other" bucket
        e, a = e[:-1], a[:-1]
    if len(e) < 2:
        return 0.0
    return psi(e, a)


def _level_counts(values: pd.Series, kept: pd.Index) -> np.ndarray:
    """Rows per kept level, then one count for all the other levels together."""
    own = values.value_counts().reindex(kept, fill_value=0).to_numpy()
    return np.append(own, len(values) - own.sum())


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
