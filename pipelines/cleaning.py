"""Declarative cleaning rules. Nothing is dropped silently: every removed row goes to the
quarantine table with the split it came from and the rule that removed it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest

from pipelines.config import CleanConfig, SchemaConfig
from pipelines.data.schema import LABEL
from pipelines.errors import PipelineError

RULE, SPLIT = "_rule", "_split"


@dataclass
class CleanResult:
    splits: dict[str, pd.DataFrame]
    quarantine: pd.DataFrame
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    imputed: dict[str, int] = field(default_factory=dict)


def clean_splits(
    splits: dict[str, pd.DataFrame], schema: SchemaConfig, rules: CleanConfig, seed: int
) -> CleanResult:
    _check_rule_columns(schema, rules)
    quarantined: list[pd.DataFrame] = []
    counts: dict[str, dict[str, int]] = {}
    kept: dict[str, pd.DataFrame] = {}
    for name, frame in splits.items():
        counts[name] = {}
        for rule, mask in _row_rules(frame, schema, rules):
            removed = frame[mask]
            counts[name][rule] = int(mask.sum())
            if len(removed):
                quarantined.append(removed.assign(**{RULE: rule, SPLIT: name}))
            frame = frame[~mask]
        kept[name] = frame.reset_index(drop=True)

    kept, imputed = _impute(kept, schema, rules)
    if rules.outliers.enabled:
        train = kept["train"]
        mask = _outliers(train, schema, rules, seed)
        counts["train"]["isolation_forest_outlier"] = int(mask.sum())
        if mask.any():
            quarantined.append(
                train[mask].assign(**{RULE: "isolation_forest_outlier", SPLIT: "train"})
            )
        kept["train"] = train[~mask].reset_index(drop=True)

    for name, frame in kept.items():
        if frame.empty or frame[LABEL].nunique() < 1:
            raise PipelineError(
                f"clean: every row of the {name} split was quarantined; check data.clean rules"
            )
        kept[name] = frame.assign(**{LABEL: frame[LABEL].astype("int64")})
    quarantine = (
        pd.concat(quarantined, ignore_index=True)
        if quarantined
        else _empty_quarantine(splits["train"])
    )
    for column in schema.categorical:
        if column in quarantine:
            quarantine[column] = quarantine[column].astype("string")
    return CleanResult(kept, quarantine, counts, imputed)


def _row_rules(frame: pd.DataFrame, schema: SchemaConfig, rules: CleanConfig):
    """Yield (rule name, rows it removes), applied in order on what earlier rules kept."""
    yield "missing_label", frame[LABEL].isna()
    for column, allowed in rules.allowed_values.items():
        values = frame[column]
        yield f"allowed_values:{column}", values.notna() & ~values.astype("string").isin(allowed)
    for column, bounds in rules.ranges.items():
        values = frame[column]
        too_low = values < bounds.min if bounds.min is not None else False
        too_high = values > bounds.max if bounds.max is not None else False
        yield f"range:{column}", (too_low | too_high) & values.notna()
    if rules.missing.numeric == "quarantine" and schema.numeric:
        yield "missing_numeric", frame[schema.numeric].isna().any(axis=1)
    if rules.missing.categorical == "quarantine" and schema.categorical:
        yield "missing_categorical", frame[schema.categorical].isna().any(axis=1)
    if rules.drop_duplicates:
        subset = [*schema.id_columns, *schema.features, LABEL]
        if schema.time_column:
            subset.append(schema.time_column)
        yield "duplicate", frame.duplicated(subset=subset, keep="first")


def _impute(
    splits: dict[str, pd.DataFrame], schema: SchemaConfig, rules: CleanConfig
) -> tuple[dict[str, pd.DataFrame], dict[str, int]]:
    """Fill missing values with statistics of the train split only (no test leakage)."""
    train = splits["train"]
    fills: dict[str, object] = {}
    for column in schema.numeric:
        strategy = rules.missing.numeric
        if strategy == "median":
            fills[column] = float(train[column].median()) if train[column].notna().any() else 0.0
        elif strategy == "mean":
            fills[column] = float(train[column].mean()) if train[column].notna().any() else 0.0
        elif strategy == "zero":
            fills[column] = 0.0
    for column in schema.categorical:
        if rules.missing.categorical == "most_frequent" and train[column].notna().any():
            fills[column] = str(train[column].mode().iloc[0])
        elif rules.missing.categorical != "quarantine":
            fills[column] = "__missing__"
    imputed = {c: int(sum(part[c].isna().sum() for part in splits.values())) for c in fills}
    return {name: part.fillna(fills) for name, part in splits.items()}, {
        c: n for c, n in imputed.items() if n
    }


def _outliers(
    train: pd.DataFrame, schema: SchemaConfig, rules: CleanConfig, seed: int
) -> pd.Series:
    """IsolationForest on the train split only: evaluation data is never thinned."""
    if not schema.numeric or len(train) < 10:
        return pd.Series(False, index=train.index)
    forest = IsolationForest(
        contamination=rules.outliers.contamination, random_state=seed, n_jobs=1
    )
    flagged = forest.fit_predict(train[schema.numeric].to_numpy(dtype=np.float32)) == -1
    if rules.outliers.keep_positive:
        flagged &= train[LABEL].to_numpy() != 1
    return pd.Series(flagged, index=train.index)


def _check_rule_columns(schema: SchemaConfig, rules: CleanConfig) -> None:
    for key, columns, allowed in (
        ("data.clean.ranges", rules.ranges, schema.numeric),
        ("data.clean.allowed_values", rules.allowed_values, schema.categorical),
    ):
        for column in columns:
            if column not in allowed:
                kind = "numeric" if key.endswith("ranges") else "categorical"
                raise PipelineError(
                    f"config key '{key}.{column}': {column!r} is not a declared {kind} column "
                    f"(data.schema.{kind})"
                )


def _empty_quarantine(like: pd.DataFrame) -> pd.DataFrame:
    return like.iloc[0:0].assign(
        **{RULE: pd.Series(dtype="string"), SPLIT: pd.Series(dtype="string")}
    )


def encode_features(
    splits: dict[str, pd.DataFrame], schema: SchemaConfig
) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """One-hot categoricals with the train split's categories; numeric features as float32.
    Categories unseen in train become all-zero rows rather than new columns."""
    categories = {c: sorted(splits["train"][c].dropna().unique()) for c in schema.categorical}
    feature_names = list(schema.numeric) + [
        f"{c}={value}" for c in schema.categorical for value in categories[c]
    ]
    encoded = {}
    for name, frame in splits.items():
        columns = {c: frame[c].astype("float32") for c in schema.numeric}
        for c in schema.categorical:
            for value in categories[c]:
                columns[f"{c}={value}"] = (frame[c] == value).astype("float32")
        keep = {c: frame[c] for c in [*schema.id_columns, schema.time_column] if c}
        encoded[name] = pd.DataFrame({**keep, **columns, LABEL: frame[LABEL]})
    return encoded, feature_names
