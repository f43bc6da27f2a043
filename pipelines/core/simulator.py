"""The skeleton the data simulators share: exclusive dirt kinds drawn at declared shares, a
label per row, and duplicates that copy an earlier clean row (a re-sent ticket, a re-taken
photo). A modality's simulator renders each planned row (text, image) from the plan."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, TypedDict, Unpack

import datasets

from pipelines.errors import PipelineError

CLEAN = ""  # the dirt value of a row without dirt
DUPLICATE_KINDS = ("exact_duplicate", "near_duplicate")


def check_n_rows(caller: str, n_rows: object) -> None:
    if isinstance(n_rows, bool) or not isinstance(n_rows, int) or n_rows < 1:
        raise PipelineError(f"{caller}: n_rows = {n_rows!r}: expected an integer >= 1")


def plan_rows(
    n_rows: int,
    seed: int,
    classes: list[str],
    shares: Any,
    rates: dict[str, float],
    id_column: str,
) -> dict[str, Any]:
    """Per row: its id, label (drawn at `shares` among `classes`), dirt kind (drawn at
    `rates`) and, for a duplicate, the earlier clean row it copies (`source`, -1 for none)
    with that row's label (`source_label`). A duplicate with no clean row before it stays
    clean."""
    import numpy as np

    rng = np.random.default_rng(seed)
    labels = rng.choice(len(classes), size=n_rows, p=shares / shares.sum())
    kinds = [CLEAN, *rates]
    probs = np.array([max(0.0, 1.0 - sum(rates.values())), *rates.values()])
    kind_ix = rng.choice(len(kinds), size=n_rows, p=probs / probs.sum())
    dirt = np.array(kinds, dtype=object)[kind_ix]

    # a duplicate copies a uniformly drawn clean row that comes before it
    clean_rows = np.flatnonzero(kind_ix == 0)
    n_clean_before = np.searchsorted(clean_rows, np.arange(n_rows))
    pick = np.floor(rng.random(n_rows) * np.maximum(n_clean_before, 1)).astype(np.int64)
    is_dup = np.isin(dirt, DUPLICATE_KINDS)
    orphan = is_dup & (n_clean_before == 0)
    dirt[orphan] = CLEAN  # nothing to copy yet: the row stays clean
    copied = clean_rows[np.minimum(pick, len(clean_rows) - 1)] if len(clean_rows) else pick
    source = np.where(is_dup & ~orphan, copied, -1)
    names = np.array(classes, dtype=object)
    return {
        id_column: np.arange(n_rows, dtype=np.int64),
        "label": names[labels].tolist(),
        "dirt": dirt.tolist(),
        "source": source,
        "source_label": names[labels[np.maximum(source, 0)]].tolist(),
    }


# render(row id, label, dirt kind, source row, source label) -> (content cell, label): a dirt
# kind may change the label (a mislabelled row)
RenderRow = Callable[[int, str, str, int, str], tuple[Any, str]]


class SimulationOptions(TypedDict, total=False):
    """What a caller of any simulator may ask for besides the rows."""

    num_proc: int | None  # worker processes rendering rows (None: this process)
    with_dirt_column: bool  # keep the `dirt` column: each row's injected kind, "" for clean


@dataclass(frozen=True)
class RowSimulation:
    """A modality's simulated table: `name` in errors and progress, its id and content
    columns, the features rendering writes (None: inferred) and rows per rendering batch."""

    name: str
    id_column: str
    content_column: str
    features: datasets.Features | None = None
    batch_size: int = 1000

    def simulate(
        self,
        n_rows: int,
        seed: int,
        class_shares: Mapping[str, float],
        dirt_rates: dict[str, float],
        render: RenderRow,
        **options: Unpack[SimulationOptions],
    ) -> datasets.Dataset:
        """`n_rows` planned by plan_rows and rendered by `render`: columns id (int64),
        content, label and, with `with_dirt_column`, dirt (ground truth for scoring the
        rules)."""
        import numpy as np

        check_n_rows(self.name, n_rows)
        shares = np.array(list(class_shares.values()), dtype=float)
        plan = plan_rows(n_rows, seed, list(class_shares), shares, dirt_rates, self.id_column)
        render_batch = partial(
            _render_batch,
            render=render,
            id_column=self.id_column,
            content_column=self.content_column,
        )
        ds = datasets.Dataset.from_dict(plan).map(
            render_batch,
            batched=True,
            batch_size=self.batch_size,
            num_proc=options.get("num_proc"),
            remove_columns=["source", "source_label"],
            features=self.features,
            desc=self.name.replace("_", " "),
        )
        ds = ds.select_columns([self.id_column, self.content_column, "label", "dirt"])
        return ds if options.get("with_dirt_column", False) else ds.remove_columns("dirt")


def _render_batch(
    batch: dict[str, list], render: RenderRow, id_column: str, content_column: str
) -> dict[str, list]:
    contents, labels = [], []
    for row in zip(
        batch[id_column],
        batch["label"],
        batch["dirt"],
        batch["source"],
        batch["source_label"],
        strict=True,
    ):
        content, label = render(*row)
        contents.append(content)
        labels.append(label)
    return {content_column: contents, "label": labels}
