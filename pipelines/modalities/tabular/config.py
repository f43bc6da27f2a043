"""The table sections of the data config (`data.profile`, `data.clean`, `data.augment`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipelines.schema.fields import AT_LEAST_ONE, FRACTION, NON_NEGATIVE, bounded


@dataclass
class GatesConfig:
    min_rows: int = bounded(100, **NON_NEGATIVE)
    """The profile stage fails when a split has fewer rows than this."""
    max_missing_fraction: float = bounded(0.2, **FRACTION)
    """Largest share of missing values a feature column may have."""
    min_positive_fraction: float = bounded(0.001, **FRACTION)
    """Smallest share of positive labels a split may have."""
    max_positive_fraction: float = bounded(0.9, **FRACTION)
    """Largest share of positive labels a split may have."""
    max_missing_label_fraction: float = bounded(0.05, **FRACTION)
    """Rows without a label are quarantined by clean; more than this many is a broken file."""
    max_drift_psi: float = bounded(1.0, **NON_NEGATIVE)
    """Largest train-vs-test PSI a feature may show before the profile gate fails."""


@dataclass
class ProfileConfig:
    gates: GatesConfig = field(default_factory=GatesConfig)
    """Quality gates: the profile stage fails, naming each gate missed, when one is."""


@dataclass
class RangeRule:
    min: float | None = None
    max: float | None = None


@dataclass
class MissingConfig:
    numeric: str = "median"
    """How missing numeric values are filled (statistics from the train split), or `quarantine` the
    row."""
    categorical: str = "most_frequent"
    """How missing categorical values are filled, or `quarantine` the row."""


@dataclass
class OutlierConfig:
    enabled: bool = False
    """Quarantine IsolationForest outliers of the train split (never a positive row when
    `keep_positive`)."""
    contamination: float = bounded(0.01, gt=0.0, le=0.5)
    """Expected share of outliers in the train split (IsolationForest's own range)."""
    keep_positive: bool = True
    """Never remove a positive row as an outlier (rare positives look like outliers)."""


@dataclass
class CleanConfig:
    ranges: dict[str, RangeRule] = field(default_factory=dict)
    """Per numeric column, `{min, max}`: rows outside are quarantined (rule `range`)."""
    allowed_values: dict[str, list[str]] = field(default_factory=dict)
    """Per categorical column, the allowed values: other rows are quarantined (rule
    `allowed_values`)."""
    missing: MissingConfig = field(default_factory=MissingConfig)
    """How missing feature values are handled."""
    drop_duplicates: bool = True
    """Quarantine exact duplicate rows (the first copy stays)."""
    outliers: OutlierConfig = field(default_factory=OutlierConfig)
    """IsolationForest outlier removal on the train split."""
    rules: list[Any] = field(default_factory=list)
    """A user's own row rules, each {_target_: module.Class, name: ..., <its arguments>}; run after
    the built-in row rules (contract: pipelines/modalities/tabular/cleaning.py)"""


@dataclass
class AugmentConfig:
    method: str = "none"
    """imbalanced-learn resampling of the train split only."""
    sampling_strategy: float = bounded(1.0, gt=0.0, le=1.0)
    """Minority/majority ratio after resampling, as imbalanced-learn reads a float."""
    k_neighbors: int = bounded(5, **AT_LEAST_ONE)
    """Neighbours SMOTE interpolates between."""


CHOICES: dict[str, tuple[str, ...]] = {
    "data.clean.missing.numeric": ("median", "mean", "zero", "quarantine"),
    "data.clean.missing.categorical": ("most_frequent", "constant", "quarantine"),
    "data.augment.method": ("none", "smote", "random_over", "random_under", "smote_tomek"),
}
