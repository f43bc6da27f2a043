"""Train/validation/test split: by time (no future rows in training) or stratified by label."""

from __future__ import annotations

import pandas as pd
from sklearn.model_selection import train_test_split

from pipelines.config import SchemaConfig, SplitConfig
from pipelines.data.schema import LABEL
from pipelines.errors import PipelineError


def split_frame(
    frame: pd.DataFrame, split: SplitConfig, schema: SchemaConfig, seed: int
) -> dict[str, pd.DataFrame]:
    n_rows = len(frame)
    n_test = int(round(n_rows * split.test_fraction))
    n_val = int(round(n_rows * split.val_fraction))
    if min(n_test, n_val, n_rows - n_test - n_val) < 1:
        raise PipelineError(
            f"data: {n_rows} rows are too few to split with val_fraction={split.val_fraction} "
            f"and test_fraction={split.test_fraction} (config key 'data.split')"
        )
    if split.method == "time":
        if not schema.time_column:
            raise PipelineError(
                "config key 'data.split.method' = 'time' needs 'data.schema.time_column'"
            )
        ordered = frame.sort_values(schema.time_column, kind="stable").reset_index(drop=True)
        n_train = n_rows - n_val - n_test
        parts = {
            "train": ordered.iloc[:n_train],
            "val": ordered.iloc[n_train : n_train + n_val],
            "test": ordered.iloc[n_train + n_val :],
        }
    else:
        # missing labels get their own stratum; clean quarantines them later
        strata = frame[LABEL].fillna(-1)
        try:
            rest, test = train_test_split(
                frame, test_size=n_test, stratify=strata, random_state=seed
            )
            train, val = train_test_split(
                rest, test_size=n_val, stratify=strata.loc[rest.index], random_state=seed
            )
        except ValueError as err:
            counts = ", ".join(f"{k:g}: {v}" for k, v in strata.value_counts().items())
            raise PipelineError(
                f"data: cannot stratify {n_rows} rows by label (class counts {counts}) with "
                f"config key 'data.split' val_fraction={split.val_fraction}, "
                f"test_fraction={split.test_fraction}: {str(err).splitlines()[0]}"
            ) from None
        parts = {"train": train, "val": val, "test": test}
    return {name: part.reset_index(drop=True) for name, part in parts.items()}
