"""Per-customer transaction histories for the sequence models.

Each scored transaction becomes (seq_len, n_features + 1): the same customer's previous
transactions (from any split: only their features, never their labels, and only ones
earlier in time, so nothing leaks from the future) followed by the transaction itself,
left-padded with zero rows; the last channel marks real rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines.data.schema import LABEL
from pipelines.errors import PipelineError
from pipelines.io import read_columns


def customer_sequences(
    split_paths: dict[str, Path],
    features: list[str],
    customer_column: str,
    time_column: str,
    seq_len: int,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(x, y) for every split: x is (rows, seq_len, len(features) + 1) float32, rows in the
    split's own order."""
    parts = []
    for order, (name, path) in enumerate(split_paths.items()):
        table = read_columns(path)
        for column in (customer_column, time_column):
            if column not in table.column_names:
                raise PipelineError(
                    f"{path}: sequence models need column '{column}' (data.schema "
                    "id_columns/time_column); it is missing"
                )
        parts.append((name, order, table))

    # one coding over all splits, so a customer is the same customer in every split
    customers = np.unique(
        np.concatenate([t.column(customer_column).to_numpy().astype(str) for *_, t in parts]),
        return_inverse=True,
    )[1]
    times = np.concatenate(
        [
            t.column(time_column).to_numpy().astype("datetime64[ns]").astype(np.int64)
            for *_, t in parts
        ]
    )
    x = np.concatenate(
        [
            np.column_stack([t.column(f).to_numpy().astype(np.float32) for f in features])
            for *_, t in parts
        ]
    )
    split_of = np.concatenate([np.full(t.num_rows, order) for _, order, t in parts])
    row_of = np.concatenate([np.arange(t.num_rows) for *_, t in parts])

    # customer, then time; ties keep the splits' own order
    order = np.lexsort((row_of, split_of, times, customers))
    sorted_customers = customers[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_customers)) + 1]
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(order)]))

    n, width = len(order), x.shape[1]
    sequences = np.zeros((n, seq_len, width + 1), dtype=np.float32)
    for back in range(seq_len):
        position = np.arange(n) - back
        real = position >= group_start
        slot = seq_len - 1 - back
        sequences[real, slot, :width] = x[order[position[real]]]
        sequences[real, slot, width] = 1.0

    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, index, table in parts:
        mine = split_of[order] == index
        placed = np.empty((table.num_rows, seq_len, width + 1), dtype=np.float32)
        placed[row_of[order][mine]] = sequences[mine]
        out[name] = (placed, table.column(LABEL).to_numpy().astype(np.float32))
    return out
