"""The top-up every modality's offline augmentation does: rows generated from a class's own
train rows until each class reaches its target, appended to the train split with two columns
that say which rows are generated and from which row. A modality supplies how one new row's
content is made from its source row's (EDA for a ticket, a transformed copy of an image)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np

AUGMENTED = "augmented"  # column: True for a generated row
SOURCE_ID = "source_row"  # column: the train row a generated row was made from (-1: none)


class PlannedCopy(NamedTuple):
    """One generated row: the train row it is made from, its place in the plan, and how many
    copies of that row the plan made before it (a seed that depends on what the row is, not
    on which process makes it)."""

    source: int
    position: int
    copy: int


# content of the source row, the copy to make -> content of the generated row
MakeRow = Callable[[Any, PlannedCopy], Any]


def class_targets(
    labels: list[Any], min_share: float, per_class: Mapping[str, float] | None = None
) -> dict[str, int]:
    """Rows each class should have after the top-up, by class name in sorted order: its share
    (per_class, else min_share) of the largest class's count, rounded up, and never fewer than
    it has."""
    counts = Counter(str(label) for label in labels)
    largest = max(counts.values(), default=0)
    shares = per_class or {}
    return {
        name: max(have, math.ceil(shares.get(name, min_share) * largest))
        for name, have in sorted(counts.items())
    }


def top_up_plan(labels: list[Any], targets: dict[str, int], seed: int) -> list[int]:
    """Train rows to copy (with repeats) so each class reaches its target: rows of a class in
    a seeded shuffled order, cycling through all of them before any repeats."""
    rng = np.random.default_rng(seed)
    labels_array = np.asarray([str(label) for label in labels], dtype=object)
    plan: list[int] = []
    for name, target in targets.items():
        rows = np.flatnonzero(labels_array == name)
        missing = target - len(rows)
        if missing <= 0:
            continue
        order = np.concatenate([rng.permutation(rows) for _ in range(-(-missing // len(rows)))])
        plan.extend(int(r) for r in order[:missing])
    return plan


def mark_originals(train: Any, label_column: str) -> Any:
    """`train` (a datasets.Dataset) with AUGMENTED False and SOURCE_ID -1 on every row."""
    return train.map(
        lambda batch: {
            AUGMENTED: [False] * len(batch[label_column]),
            SOURCE_ID: [-1] * len(batch[label_column]),
        },
        batched=True,
    )


def append_generated(
    original: Any,
    plan: list[int],
    make_row: MakeRow,
    content_column: str,
    label_column: str,
    *,
    batch_size: int = 1000,
    num_proc: int | None = None,
) -> tuple[Any, dict[str, int]]:
    """`original` (marked by mark_originals) with one generated row per entry of `plan`
    appended, its content made by `make_row` from the planned source row's, its other columns
    copied; and the rows added per class, in the order the plan first reaches each class."""
    from datasets import concatenate_datasets

    seen: Counter[int] = Counter()
    copies = []
    for row in plan:
        copies.append(seen[row])
        seen[row] += 1

    def generate(batch: dict[str, list[Any]], indices: list[int]) -> dict[str, list[Any]]:
        made = [
            make_row(content, PlannedCopy(plan[i], i, copies[i]))
            for content, i in zip(batch[content_column], indices, strict=True)
        ]
        return {
            content_column: made,
            AUGMENTED: [True] * len(made),
            SOURCE_ID: [plan[i] for i in indices],
        }

    generated = original.select(plan).map(
        generate,
        batched=True,
        batch_size=batch_size,
        with_indices=True,
        num_proc=num_proc,
        features=original.features,
        desc="augment",
    )
    # `[:]`: datasets 5 returns a lazy column that reads row by row when iterated
    added = Counter(str(label) for label in generated[label_column][:])
    return concatenate_datasets([original, generated]), dict(added)
