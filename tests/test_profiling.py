"""The drift statistic and the data checks the profile stage gates on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.data.split import split_frame
from pipelines.modalities.tabular.config import GatesConfig
from pipelines.profiling import check_gates, population_stability_index, profile_splits
from pipelines.schema.data import SchemaConfig, SplitConfig

ORDINARY = 0.25  # PSI under 0.25 is read as "no significant shift" in credit-risk practice


def table(rows: int, seed: int) -> pd.DataFrame:
    """Columns of the shapes real tables have: continuous, heavy-tailed, few distinct values,
    mostly zero, and a categorical with rare levels."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.normal(40, 12, rows).round(),
            "amount": rng.lognormal(7, 1.2, rows),
            "installments": rng.integers(1, 5, rows).astype(float),
            "overdraft": np.where(rng.random(rows) < 0.85, 0.0, rng.exponential(500, rows)),
            "purpose": rng.choice(
                ["car", "tv", "edu", "rare1", "rare2"], rows, p=[0.5, 0.3, 0.16, 0.02, 0.02]
            ),
            "label": (rng.random(rows) < 0.3).astype(float),
        }
    )


SCHEMA = SchemaConfig(
    label="label",
    numeric=["age", "amount", "installments", "overdraft"],
    categorical=["purpose"],
)


@pytest.mark.parametrize("rows", [300, 1300])
def test_a_stratified_random_split_of_a_small_table_shows_no_drift(rows: int) -> None:
    worst = 0.0
    for seed in range(20):
        splits = split_frame(table(rows, seed), SplitConfig(), SCHEMA, seed)
        report = profile_splits(splits, SCHEMA)
        worst = max(worst, report["max_drift_psi"])
    assert worst < ORDINARY, f"worst PSI over 20 random splits of {rows} rows: {worst:.3f}"


BRANCHES = [f"branch{i:02d}" for i in range(50)]


def with_branch(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """A 50-level categorical, as a branch or merchant-category column: a few common levels
    and a long tail (shares proportional to 1/rank)."""
    share = 1 / np.arange(1, len(BRANCHES) + 1)
    rng = np.random.default_rng(1000 + seed)
    return frame.assign(branch=rng.choice(BRANCHES, len(frame), p=share / share.sum()))


MANY_LEVELS = SchemaConfig(label="label", numeric=SCHEMA.numeric, categorical=["purpose", "branch"])


def test_a_fifty_level_categorical_on_a_stratified_random_split_shows_no_drift() -> None:
    worst = 0.0
    for seed in range(20):
        splits = split_frame(with_branch(table(1300, seed), seed), SplitConfig(), MANY_LEVELS, seed)
        report = profile_splits(splits, MANY_LEVELS)
        worst = max(worst, report["columns"]["branch"]["drift_psi"])
        assert check_gates(report, GatesConfig(max_drift_psi=ORDINARY)) == []
    assert worst < ORDINARY, f"worst 50-level PSI over 20 random splits of 1,300 rows: {worst:.3f}"


def test_a_shift_between_the_common_levels_of_a_fifty_level_categorical_is_detected() -> None:
    splits = split_frame(with_branch(table(1300, 0), 0), SplitConfig(), MANY_LEVELS, 0)
    test = splits["test"].copy()
    # a third of the test rows move to the 4th most common branch (~6% of rows before)
    moved = test.sample(frac=1 / 3, random_state=0).index
    test.loc[moved, "branch"] = BRANCHES[3]
    report = profile_splits({**splits, "test": test}, MANY_LEVELS)
    assert report["columns"]["branch"]["drift_psi"] > ORDINARY


def test_a_new_level_in_test_is_detected() -> None:
    splits = split_frame(table(1300, 0), SplitConfig(), SCHEMA, 0)
    test = splits["test"].copy()
    test.loc[test.sample(frac=0.2, random_state=0).index, "purpose"] = "crypto"
    report = profile_splits({**splits, "test": test}, SCHEMA)
    assert report["columns"]["purpose"]["drift_psi"] > ORDINARY


def test_a_real_shift_is_still_detected_on_a_small_sample() -> None:
    rng = np.random.default_rng(0)
    train = pd.Series(rng.normal(0, 1, 900))
    shifted = pd.Series(rng.normal(1.0, 1, 200))
    assert population_stability_index(train, shifted) > ORDINARY


def splits_of(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return split_frame(frame, SplitConfig(), SCHEMA, seed=0)


def test_infinite_values_are_named_by_column_before_any_drift_gate() -> None:
    frame = table(1300, 0)
    frame.loc[[3, 50, 700], "amount"] = [np.inf, -np.inf, np.inf]
    failures = check_gates(profile_splits(splits_of(frame), SCHEMA), GatesConfig())
    assert failures and "'amount'" in failures[0] and "3 non-finite" in failures[0]
    assert not any("drift" in f for f in failures)


def test_missing_labels_beyond_the_bound_are_named_with_their_count() -> None:
    frame = table(1300, 0)
    frame.loc[frame.index[:130], "label"] = np.nan
    failures = check_gates(profile_splits(splits_of(frame), SCHEMA), GatesConfig())
    assert failures[0].startswith("label column 'label' is missing in 130 of 1300 rows")
    assert "quarantine" in failures[0]


def test_a_few_missing_labels_pass_the_profile_for_clean_to_quarantine() -> None:
    frame = table(1300, 0)
    frame.loc[frame.index[:13], "label"] = np.nan
    assert check_gates(profile_splits(splits_of(frame), SCHEMA), GatesConfig()) == []


def test_a_split_with_one_class_is_named() -> None:
    frame = table(1300, 0)
    splits = splits_of(frame)
    splits["test"] = splits["test"].assign(label=0.0)
    failures = check_gates(profile_splits(splits, SCHEMA), GatesConfig())
    assert "one class in the test split" in failures[0]


def test_a_shift_in_a_zero_one_flag_reads_as_drift() -> None:
    """A 0/1 flag's quantile edges collapse into one bin; it is binned by value instead."""
    rng = np.random.default_rng(0)
    train = pd.Series((rng.random(5000) < 0.3).astype(float))
    shifted = pd.Series((rng.random(5000) < 0.6).astype(float))
    same = pd.Series((rng.random(5000) < 0.3).astype(float))
    assert population_stability_index(train, shifted) > 0.25
    assert population_stability_index(train, same) < 0.01
