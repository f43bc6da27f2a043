"""Train/validation/test split: by time (no future rows in training) or stratified by label.
split_frame works on a pandas frame, split_dataset on a memory-mapped `datasets.Dataset`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from pipelines.data.schema import LABEL
from pipelines.errors import PipelineError
from pipelines.schema.data import SchemaConfig, SplitConfig

if TYPE_CHECKING:
    from datasets import Dataset


def _sizes(n_rows: int, split: SplitConfig) -> tuple[int, int]:
    n_test = int(round(n_rows * split.test_fraction))
    n_val = int(round(n_rows * split.val_fraction))
    if min(n_test, n_val, n_rows - n_test - n_val) < 1:
        raise PipelineError(
            f"data: {n_rows} rows are too few to split with val_fraction={split.val_fraction} "
            f"and test_fraction={split.test_fraction} (config key 'data.split')"
        )
    return n_test, n_val


def _stratified(rows, strata: pd.Series, n_test: int, n_val: int, split: SplitConfig, seed: int):
    """train_test_split twice, stratified by label (missing labels are their own stratum)."""
    try:
        rest, test = train_test_split(rows, test_size=n_test, stratify=strata, random_state=seed)
        rest_strata = strata.iloc[rest] if isinstance(rows, np.ndarray) else strata.loc[rest.index]
        train, val = train_test_split(
            rest, test_size=n_val, stratify=rest_strata, random_state=seed
        )
    except ValueError as err:
        counts = ", ".join(f"{k:g}: {v}" for k, v in strata.value_counts().items())
        raise PipelineError(
            f"data: cannot stratify {len(strata)} rows by label (class counts {counts}) with "
            f"config key 'data.split' val_fraction={split.val_fraction}, "
            f"test_fraction={split.test_fraction}: {str(err).splitlines()[0]}"
        ) from None
    return {"train": train, "val": val, "test": test}


def _by_time(split: SplitConfig, schema: SchemaConfig) -> bool:
    """Whether the split is by time (which needs the time column declared)."""
    if split.method == "time" and not schema.time_column:
        raise PipelineError(
            "config key 'data.split.method' = 'time' needs 'data.schema.time_column'"
        )
    return split.method == "time"


def split_frame(
    frame: pd.DataFrame, split: SplitConfig, schema: SchemaConfig, seed: int
) -> dict[str, pd.DataFrame]:
    n_rows = len(frame)
    n_test, n_val = _sizes(n_rows, split)
    if _by_time(split, schema):
        ordered = frame.sort_values(schema.time_column, kind="stable").reset_index(drop=True)
        n_train = n_rows - n_val - n_test
        parts = {
            "train": ordered.iloc[:n_train],
            "val": ordered.iloc[n_train : n_train + n_val],
            "test": ordered.iloc[n_train + n_val :],
        }
    else:
        # missing labels get their own stratum; clean quarantines them later
        parts = _stratified(frame, frame[LABEL].fillna(-1), n_test, n_val, split, seed)
    return {name: part.reset_index(drop=True) for name, part in parts.items()}


def split_dataset(
    dataset: Dataset, split: SplitConfig, schema: SchemaConfig, seed: int
) -> dict[str, np.ndarray]:
    """`split_frame` for a memory-mapped dataset: the row indices of each split, decided on
    one column (the time column or the label, 8 bytes a row); the rows themselves are copied
    once, when each split is written (io.write_split). Same rows, same order as split_frame
    gives for the same table."""
    import pyarrow.compute as pc

    from pipelines.io import arrow_column

    n_rows = len(dataset)
    n_test, n_val = _sizes(n_rows, split)
    if _by_time(split, schema):
        # Arrow's sort is stable and puts missing times last, as pandas' sort_values does
        times = arrow_column(dataset, schema.time_column)
        order = pc.array_sort_indices(times, null_placement="at_end").to_numpy()
        n_train = n_rows - n_val - n_test
        parts = {
            "train": order[:n_train],
            "val": order[n_train : n_train + n_val],
            "test": order[n_train + n_val :],
        }
    else:
        label = arrow_column(dataset, LABEL).to_numpy(zero_copy_only=False)
        strata = pd.Series(label).fillna(-1)
        # the same permutation train_test_split draws for the frame: it depends only on the
        # row count, the strata and the seed
        parts = _stratified(np.arange(n_rows), strata, n_test, n_val, split, seed)
    return {name: np.asarray(indices, dtype=np.int64) for name, indices in parts.items()}
