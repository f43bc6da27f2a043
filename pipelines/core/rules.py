"""The rule engine every modality's cleaning shares: splits visited train first, each row's
verdict (the rule that removed it, "" when kept), ordered duplicate verdicts applied across
splits, per-rule counts, and the checks that fail in one line naming the key to loosen.

A modality supplies its rules (a row pass that writes one verdict a row into a working
dataset), its keys for duplicates, and its report's extra figures; nothing here knows what a
row holds. Nothing is dropped silently: a removed row keeps its rule for the quarantine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.core.dedup import exact_pass
from pipelines.errors import PipelineError
from pipelines.io import arrow_column


@dataclass
class SplitVerdicts:
    """One split while the rules run: the working dataset and each row's verdict."""

    name: str
    work: datasets.Dataset
    rules: list[str]

    def active(self) -> list[bool]:
        """Rows no rule has removed yet: the only ones later rules judge."""
        return [rule == "" for rule in self.rules]

    def kept_rows(self) -> list[int]:
        return [i for i, rule in enumerate(self.rules) if not rule]

    def removed_rows(self) -> list[int]:
        return [i for i, rule in enumerate(self.rules) if rule]


@dataclass(frozen=True)
class RuleSet:
    """What a modality's cleaning gives run_rules: its config key and the key to loosen per
    rule, the columns it reserves (named `owner` in the error), how a split is validated
    (ds, source, min_classes), the row pass (ds, split name) -> working dataset whose
    `verdict_column` holds each row's rule ("" kept), the working column of exact-duplicate
    keys (None: exact pass off), the near-duplicate verdicts (None: off), the report's
    figures of a split besides rows and removals, and the kept and removed rows' datasets."""

    key: str
    removal_rules: Mapping[str, str]
    reserved: tuple[str, ...]
    owner: str
    validate: Callable[[datasets.Dataset, str, int], None]
    row_pass: Callable[[datasets.Dataset, str], datasets.Dataset]
    verdict_column: str
    exact_keys: str | None
    near: Callable[[list[SplitVerdicts]], list[list[str]]] | None
    figures: Callable[[SplitVerdicts], dict[str, Any]]
    kept: Callable[[SplitVerdicts], datasets.Dataset]
    removed: Callable[[SplitVerdicts], datasets.Dataset]


def run_rules(
    splits: dict[str, datasets.Dataset], rules: RuleSet
) -> tuple[dict[str, datasets.Dataset], datasets.Dataset, dict[str, Any]]:
    """(cleaned splits, quarantine, report): the row rules per split, then the exact and near
    duplicate passes across splits (train first), each judging only rows still kept. The
    report has per split rows_in, rows_out, removed (per rule of removal_rules) and the
    modality's figures; a split left empty fails naming the rule to loosen."""
    ordered = ordered_splits(splits, rules.key, rules.reserved, rules.owner, rules.validate)
    states = []
    for name, ds in ordered.items():
        work = rules.row_pass(ds, name)
        states.append(SplitVerdicts(name, work, work[rules.verdict_column][:]))
    if rules.exact_keys is not None:
        keys = [s.work[rules.exact_keys][:] for s in states]
        apply_verdicts(states, exact_pass(keys, [s.active() for s in states]), "exact")
    if rules.near is not None:
        apply_verdicts(states, rules.near(states), "near")
    report = {}
    for s in states:
        removed = removed_counts(s, rules.removal_rules)
        rows = {"rows_in": len(s.work), "rows_out": len(s.work) - sum(removed.values())}
        report[s.name] = {**rows, **rules.figures(s), "removed": removed}
    fail_if_emptied(report, rules.key, rules.removal_rules)
    cleaned = {s.name: rules.kept(s) for s in states}
    quarantine = datasets.concatenate_datasets([rules.removed(s) for s in states])
    return cleaned, quarantine, report


def ordered_splits(
    splits: dict[str, datasets.Dataset],
    key: str,
    reserved: Iterable[str],
    owner: str,
    validate: Callable[[datasets.Dataset, str, int], None],
) -> dict[str, datasets.Dataset]:
    """The splits train first, each checked: no column of `reserved` (the rules' own, named
    `owner` in the error), and `validate(ds, source, min_classes)` passes (train needs two
    classes to learn from, the others one)."""
    if not splits:
        raise PipelineError(f"{key}: no splits given; expected at least a 'train' split")
    ordered = train_first(splits)
    for name, ds in ordered.items():
        check_reserved(ds, name, reserved, owner, key)
        validate(ds, f"split '{name}'", 2 if name == next(iter(ordered)) else 1)
    return ordered


def train_first(splits: dict[str, datasets.Dataset]) -> dict[str, datasets.Dataset]:
    """The splits with train first: the reference for cross-split leaks."""
    names = sorted(splits, key=lambda n: n != "train")  # stable: the others keep their order
    return {name: splits[name] for name in names}


def check_reserved(
    ds: datasets.Dataset, name: str, reserved: Iterable[str], owner: str, key: str
) -> None:
    """Fail when split `name` has a column the rules need for themselves."""
    for column in reserved:
        if column in ds.column_names:
            raise PipelineError(
                f"split '{name}': column '{column}' is reserved for {owner}; rename it before {key}"
            )


def validate_label(ds: datasets.Dataset, label_column: str, source: str, min_classes: int) -> None:
    """Fail naming `source` when the label column is missing or has < min_classes classes."""
    if label_column not in ds.column_names:
        raise PipelineError(
            f"{source}: label column '{label_column}' is missing (columns: "
            f"{', '.join(ds.column_names)}); expected a column of class labels"
        )
    classes = pc.unique(arrow_column(ds, label_column)).drop_null()
    if len(classes) < min_classes:
        seen = ", ".join(repr(c) for c in classes.to_pylist()) or "none"
        raise PipelineError(
            f"{source}: label column '{label_column}' has {len(classes)} class(es) ({seen}); "
            f"expected at least {min_classes}"
        )


def apply_verdicts(states: list[SplitVerdicts], verdicts: list[list[str]], kind: str) -> None:
    """Record a duplicate pass's verdicts ("duplicate"/"leak") as rule `{kind}_{verdict}`."""
    for state, split_verdicts in zip(states, verdicts, strict=True):
        for row, verdict in enumerate(split_verdicts):
            if verdict:
                state.rules[row] = f"{kind}_{verdict}"


def removed_counts(state: SplitVerdicts, removal_rules: Iterable[str]) -> dict[str, int]:
    """Rows removed per rule, every rule of `removal_rules` listed (0 included)."""
    removed = dict.fromkeys(removal_rules, 0)
    for rule in state.rules:
        if rule:
            removed[rule] += 1
    return removed


def column_sum(ds: datasets.Dataset, column: str) -> int:
    total = pc.sum(pc.cast(arrow_column(ds, column), pa.int64())).as_py()
    return int(total or 0)


def fail_if_emptied(report: dict[str, Any], key: str, removal_rules: Mapping[str, str]) -> None:
    """Fail naming the rule that removed most of a split left empty, and its key to loosen."""
    for name, split in report.items():
        if split["rows_out"] == 0:
            rule, count = max(split["removed"].items(), key=lambda item: item[1])
            raise PipelineError(
                f"{key}: every row of split '{name}' was removed ({rule} removed "
                f"{count} of {split['rows_in']}); loosen {removal_rules[rule]}"
            )


def split_totals(report: Mapping[str, Mapping[str, Any]], section: str = "removed") -> dict:
    """The per-split counts of `section` (removed per rule, masked per kind) summed over the
    splits, keys in first-seen order."""
    totals: dict[str, int] = {}
    for split in report.values():
        for rule, count in split[section].items():
            totals[rule] = totals.get(rule, 0) + count
    return totals
