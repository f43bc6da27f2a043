"""The rule engine every modality's cleaning shares: splits visited train first, each row's
verdict (the rule that removed it, "" when kept), ordered duplicate verdicts applied across
splits, per-rule counts, and the checks that fail in one line naming the key to loosen.

A modality supplies its rules (a row pass that writes one verdict a row into a working
dataset), its keys for duplicates, and its report's extra figures; nothing here knows what a
row holds. Nothing is dropped silently: a removed row keeps its rule for the quarantine.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

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
class ContentColumn:
    """What a modality's content column must hold: its `role` in errors ("text" column), what
    a missing one should have been, and `problem(ds, column)`: what is wrong with its values
    (e.g. "holds int64 values; expected strings"), None when nothing is."""

    role: str
    expected: str
    problem: Callable[[datasets.Dataset, str], str | None]

    def validate(
        self,
        ds: datasets.Dataset,
        column: str,
        label_column: str | None,
        source: str,
        *,
        min_classes: int = 2,
    ) -> None:
        """Fail with a PipelineError naming `source` and the column when `ds` cannot be
        cleaned: the content column missing or holding the wrong values, the label column
        (unless None) missing or with fewer than `min_classes` classes."""
        where = f"{source}: {self.role} column '{column}'"
        if column not in ds.column_names:
            raise PipelineError(
                f"{where} is missing (columns: {', '.join(ds.column_names)}); "
                f"expected {self.expected}"
            )
        problem = self.problem(ds, column)
        if problem:
            raise PipelineError(f"{where} {problem}")
        if label_column is not None:
            validate_label(ds, label_column, source, min_classes)


class RuleSet(ABC):
    """A modality's cleaning rules, as run_rules runs them. A subclass states what can appear
    in the quarantine's `rule` column (`removal_rules`, each with the key to loosen), the
    columns it reserves and what its content column must hold, names the working column
    holding each row's verdict ("" kept) and the one holding its exact-duplicate key in the
    class statement (`class TextRules(RuleSet, verdict="_tc_rule", exact_key="_tc_key")`), and
    implements the hooks below. It is built from the modality's clean config (a
    CleanSettings: `key` names it in errors) and the worker count."""

    removal_rules: ClassVar[Mapping[str, str]]
    reserved: ClassVar[tuple[str, ...]]
    content: ClassVar[ContentColumn]
    verdict_column: ClassVar[str]
    exact_key_column: ClassVar[str]
    owner: ClassVar[str] = "the cleaning rules"  # who reserves the columns, in the error

    def __init_subclass__(cls, verdict: str = "", exact_key: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.verdict_column, cls.exact_key_column = verdict, exact_key

    def __init__(self, cfg: Any, num_proc: int | None = None) -> None:
        self.cfg = cfg
        self.num_proc = num_proc

    @property
    def key(self) -> str:
        return str(self.cfg.key)

    @property
    def exact_duplicates(self) -> bool:
        """Whether the exact-duplicate pass runs (the clean config's dedup.exact)."""
        return bool(self.cfg.dedup.exact)

    def validate(self, ds: datasets.Dataset, source: str, min_classes: int) -> None:
        """The clean config's content and label columns hold what the rules need."""
        column = getattr(self.cfg, self.cfg.columns[0])
        self.content.validate(ds, column, self.cfg.label_column, source, min_classes=min_classes)

    @abstractmethod
    def row_pass(self, ds: datasets.Dataset, name: str) -> datasets.Dataset:
        """Split `name` with the working columns beside it (verdict, exact key, figures)."""

    def near(self, states: list[SplitVerdicts]) -> list[list[str]] | None:
        """Near-duplicate verdicts per split ("duplicate", "leak", ""); None: no such pass."""
        return None

    def figures(self, state: SplitVerdicts) -> dict[str, Any]:
        """The report's figures of a split besides its rows and removals."""
        return {}

    @abstractmethod
    def kept(self, state: SplitVerdicts) -> datasets.Dataset:
        """The split's kept rows, working columns dropped."""

    @abstractmethod
    def removed(self, state: SplitVerdicts) -> datasets.Dataset:
        """The split's removed rows for the quarantine, with RULE and SPLIT columns."""


# (cleaned splits, quarantine, report)
Cleaned = tuple[dict[str, datasets.Dataset], datasets.Dataset, dict[str, Any]]


def run_rules(splits: dict[str, datasets.Dataset], rules: RuleSet) -> Cleaned:
    """(cleaned splits, quarantine, report): the row rules per split, then the exact and near
    duplicate passes across splits (train first), each judging only rows still kept. The
    report has per split rows_in, rows_out, removed (per rule of removal_rules) and the
    modality's figures; a split left empty fails naming the rule to loosen."""
    ordered = ordered_splits(splits, rules.key, rules.reserved, rules.owner, rules.validate)
    states = []
    for name, ds in ordered.items():
        work = rules.row_pass(ds, name)
        states.append(SplitVerdicts(name, work, work[rules.verdict_column][:]))
    if rules.exact_duplicates:
        keys = [s.work[rules.exact_key_column][:] for s in states]
        apply_verdicts(states, exact_pass(keys, [s.active() for s in states]), "exact")
    near = rules.near(states)
    if near is not None:
        apply_verdicts(states, near, "near")
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
