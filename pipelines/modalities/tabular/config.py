"""The table sections of the data config (`data.profile`, `data.clean`, `data.augment`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipelines.schema.fields import AT_LEAST_ONE, FRACTION, NON_NEGATIVE, bounded


@dataclass
class GatesConfig:
    min_rows: int = bounded(100, **NON_NEGATIVE)
    max_missing_fraction: float = bounded(0.2, **FRACTION)
    min_positive_fraction: float = bounded(0.001, **FRACTION)
    max_positive_fraction: float = bounded(0.9, **FRACTION)
    # rows without a label are quarantined by clean; more than this many is a broken file
    max_missing_label_fraction: float = bounded(0.05, **FRACTION)
    max_drift_psi: float = bounded(1.0, **NON_NEGATIVE)


@dataclass
class ProfileConfig:
    gates: GatesConfig = field(default_factory=GatesConfig)


@dataclass
class RangeRule:
    min: float | None = None
    max: float | None = None


@dataclass
class MissingConfig:
    numeric: str = "median"
    categorical: str = "most_frequent"


@dataclass
class OutlierConfig:
    enabled: bool = False
    # IsolationForest's own range
    contamination: float = bounded(0.01, gt=0.0, le=0.5)
    keep_positive: bool = True


@dataclass
class CleanConfig:
    ranges: dict[str, RangeRule] = field(default_factory=dict)
    allowed_values: dict[str, list[str]] = field(default_factory=dict)
    missing: MissingConfig = field(default_factory=MissingConfig)
    drop_duplicates: bool = True
    outliers: OutlierConfig = field(default_factory=OutlierConfig)
    # a user's own row rules, each {_target_: module.Class, name: ..., <its arguments>}; run
    # after the built-in row rules (contract: pipelines/modalities/tabular/cleaning.py)
    rules: list[Any] = field(default_factory=list)


@dataclass
class AugmentConfig:
    method: str = "none"
    # minority/majority ratio after resampling, as imbalanced-learn reads a float
    sampling_strategy: float = bounded(1.0, gt=0.0, le=1.0)
    k_neighbors: int = bounded(5, **AT_LEAST_ONE)


CHOICES: dict[str, tuple[str, ...]] = {
    "data.clean.missing.numeric": ("median", "mean", "zero", "quarantine"),
    "data.clean.missing.categorical": ("most_frequent", "constant", "quarantine"),
    "data.augment.method": ("none", "smote", "random_over", "random_under", "smote_tomek"),
}
