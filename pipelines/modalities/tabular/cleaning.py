"""Declarative cleaning rules. Nothing is dropped silently: every removed row goes to the
quarantine table with the split it came from and the rule that removed it.

The splits are memory-mapped `datasets` (pipelines/io.py), and the work is divided by its
nature so that a 10M-row split never sits in memory as a DataFrame:
- row-wise rules (missing label, allowed values, ranges, missing values) judge a row by
  itself: a batched `Dataset.map` over pandas batches (data.num_proc processes) writes one
  small column, the first rule that removes the row, plus a 64-bit hash of the duplicate
  key when drop_duplicates is on;
- global steps read one or two columns of a whole split: duplicates (equal hashes, then the
  rows that share one compared exactly, so a hash collision cannot remove a row), the train
  split's imputation statistics (a column at a time), IsolationForest (fitted on the train
  feature matrix, as before, so it grows the same trees);
- a second batched map per split then keeps the surviving rows, fills missing values and
  encodes the features in one pass, and the result is streamed into the output file.
Rules run in their declared order, each on the rows the earlier ones kept, and kept rows
keep their order, so the rows are what the pandas version gave. A split is finished (and
its memory map dropped) before the next one is read, which bounds the pages held.

A user's own rules (data.clean.rules) run after the built-in row rules, in their listed
order, before duplicates and outliers. Each entry is {_target_: module.Class, name: ...,
<arguments>}: `name` is what the quarantine's `_rule` column and the metrics'
removed_by_rule call it; the other keys build the object (hydra.utils.instantiate), whose
module may live in any folder on PYTHONPATH. The contract of the object built:

    rule(frame: pandas.DataFrame) -> boolean array-like of len(frame), True = remove the row

`frame` is a batch of the split's rows with the input columns, as ingest wrote them (before
imputation and encoding); only rows no earlier rule removed count for it. The verdict must
depend on the row alone (batches and worker processes split the rows arbitrarily), and the
object must pickle when data.num_proc > 1."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sklearn.ensemble import IsolationForest

from pipelines.core.components import build
from pipelines.data.schema import LABEL, MAP_BATCH
from pipelines.errors import PipelineError
from pipelines.io import WRITE_BATCH, arrow_column, iter_batches, write_split
from pipelines.modalities.tabular.config import CleanConfig
from pipelines.schema.data import SchemaConfig

if TYPE_CHECKING:
    from datasets import Dataset

RULE, SPLIT = "_rule", "_split"
_CODE, _HASH = "_code", "_hash"
OUTLIER = "isolation_forest_outlier"
DUPLICATE = "duplicate"
CUSTOM_RULES_KEY = "data.clean.rules"
# rule names the built-in rules own (besides allowed_values:<column> and range:<column>)
_BUILT_IN = ("missing_label", "missing_numeric", "missing_categorical", DUPLICATE, OUTLIER)


@dataclass(frozen=True)
class CustomRule:
    """A user's row rule from data.clean.rules: its config key, its name, the callable."""

    key: str
    name: str
    judge: Callable[[pd.DataFrame], object]

    def removes(self, frame: pd.DataFrame) -> np.ndarray:
        """The rows of `frame` the rule removes, checked against the contract."""
        try:
            verdict = self.judge(frame)
        except Exception as err:
            raise PipelineError(
                f"{self.key} ({self.name!r}): the rule failed on a batch: "
                f"{type(err).__name__}: {err}"
            ) from None
        if isinstance(verdict, pd.Series) and verdict.dtype == "boolean":
            verdict = verdict.fillna(False)  # pandas' nullable booleans: NA does not remove
        mask = np.asarray(verdict)
        if mask.dtype != np.bool_ or mask.shape != (len(frame),):
            raise PipelineError(
                f"{self.key} ({self.name!r}): the rule returned {mask.dtype} of shape "
                f"{mask.shape} for {len(frame)} rows; expected a boolean mask of {len(frame)} "
                "rows (True = remove)"
            )
        return mask


def custom_rules(entries: Sequence[object], key: str = CUSTOM_RULES_KEY) -> list[CustomRule]:
    """The user's rules built from their config entries, names checked: present, unique,
    none of the built-in rules'."""
    rules: list[CustomRule] = []
    for index, entry in enumerate(entries):
        entry_key = f"{key}[{index}]"
        if not isinstance(entry, Mapping):
            raise PipelineError(
                f"{entry_key} = {entry!r}: expected a mapping {{_target_: module.Class, name: "
                "..., <arguments>}"
            )
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise PipelineError(
                f"{entry_key}.name = {name!r}: expected a non-empty string, the rule's name "
                "in the quarantine and the metrics"
            )
        taken = [r.name for r in rules]
        if name in _BUILT_IN or name in taken or name.startswith(("allowed_values:", "range:")):
            raise PipelineError(
                f"{entry_key}.name = {name!r}: already a rule's name (built-in: "
                f"{', '.join(_BUILT_IN)}, allowed_values:<column>, range:<column>)"
            )
        judge = build(entry_key, {k: v for k, v in entry.items() if k != "name"})
        if not callable(judge):
            raise PipelineError(
                f"{entry_key}: {type(judge).__name__} is not callable; expected "
                "rule(frame) -> a boolean mask of the rows to remove"
            )
        rules.append(CustomRule(entry_key, name, judge))
    return rules


@dataclass
class Removed:
    """Rows one rule removed from one split: their indices in the input split."""

    split: str
    rule: str
    indices: np.ndarray
    fills: dict[str, object] = field(default_factory=dict)  # applied before (outliers)


@dataclass
class CleanResult:
    rows_out: dict[str, int]
    features: list[str]
    removed: list[Removed]  # in the order the rules removed them
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    imputed: dict[str, int] = field(default_factory=dict)

    @property
    def quarantined(self) -> int:
        return sum(len(part.indices) for part in self.removed)


def clean_splits(
    splits: dict[str, Callable[[], Dataset]],
    schema: SchemaConfig,
    rules: CleanConfig,
    seed: int,
    work: Path,
    out: Callable[[str], Path],
    num_proc: int | None = None,
) -> CleanResult:
    """Clean and encode every split; split `name` is opened with `splits[name]()` when its
    turn comes (train first: its statistics fill the others) and written to `out(name)`.
    `work`: a scratch folder for the maps' Arrow files."""
    _check_rule_columns(schema, rules)
    custom = custom_rules(rules.rules)
    if "train" not in splits:
        raise PipelineError("clean: a train split is required")
    order = ["train", *(name for name in splits if name != "train")]
    removed: list[Removed] = []
    outliers: list[Removed] = []
    counts: dict[str, dict[str, int]] = {}
    missing: dict[str, int] = {}
    rows_out: dict[str, int] = {}
    fills: dict[str, object] = {}  # train statistics, computed for the columns that need one
    train_keep = np.zeros(0, dtype=bool)
    categories: dict[str, list[str]] = {}
    for name in order:
        data = splits[name]()
        keep, counts[name], parts = _row_and_duplicate_rules(
            data, name, schema, rules, custom, work, num_proc
        )
        removed += parts
        todo = {}
        for column in _fillable(schema, rules):
            nulls = pc.is_null(arrow_column(data, column), nan_is_null=True)
            n = int(nulls.to_numpy(zero_copy_only=False)[keep].sum())
            missing[column] = missing.get(column, 0) + n
            if n:
                if column not in fills:
                    train = data if name == "train" else splits["train"]()
                    train_rows = keep if name == "train" else train_keep
                    fills[column] = _fill_value(train, train_rows, column, schema, rules)
                todo[column] = fills[column]
        if name == "train":
            if rules.outliers.enabled:
                flagged = _outliers(data, keep, todo, schema, rules, seed)
                counts[name][OUTLIER] = len(flagged)
                if len(flagged):
                    outliers.append(Removed(name, OUTLIER, flagged, dict(todo)))
                keep[flagged] = False
            # the fills are statistics of what the row rules kept, before the outlier rule
            train_keep = keep.copy()
            if outliers:
                train_keep[outliers[0].indices] = True
            categories = _categories(data, keep, todo, schema)
        rows_out[name] = int(keep.sum())
        if not rows_out[name]:
            raise PipelineError(
                f"clean: every row of the {name} split was quarantined; check data.clean rules"
            )
        encoded = data.with_format("pandas").map(
            _encode_batch,
            fn_kwargs={"keep": keep, "fills": todo, "schema": schema, "categories": categories},
            batched=True,
            batch_size=MAP_BATCH,
            with_indices=True,
            num_proc=num_proc,
            remove_columns=data.column_names,
            cache_file_name=str(work / f"encoded-{name}.arrow"),
            load_from_cache_file=False,
            writer_batch_size=WRITE_BATCH,
            new_fingerprint=f"encoded-{name}",
            desc=f"clean: encode {name}",
        )
        write_split(out(name), encoded)
        del data, encoded  # unmap before the next split is read
    features = list(schema.numeric) + [
        f"{c}={value}" for c in schema.categorical for value in categories[c]
    ]
    imputed = {c: n for c, n in missing.items() if n}
    return CleanResult(rows_out, features, removed + outliers, counts, imputed)


def _row_and_duplicate_rules(
    data: Dataset,
    name: str,
    schema: SchemaConfig,
    rules: CleanConfig,
    custom: list[CustomRule],
    work: Path,
    num_proc: int | None,
) -> tuple[np.ndarray, dict[str, int], list[Removed]]:
    """(rows kept, rows removed per rule, the removed rows) for the row-wise rules (the
    user's included) and the duplicate rule."""
    cache = work / f"rules-{name}.arrow"
    codes, hashes = _rule_codes(data, schema, rules, custom, cache, num_proc)
    every = _row_rule_names(schema, rules, custom)
    if rules.drop_duplicates:
        live = np.flatnonzero(codes < 0)
        codes[live[_duplicates(data, live, hashes, schema)]] = len(every)
        every.append(DUPLICATE)
    counts: dict[str, int] = {}
    parts = []
    for code, rule in enumerate(every):
        rows = np.flatnonzero(codes == code)
        counts[rule] = len(rows)
        if len(rows):
            parts.append(Removed(name, rule, rows))
    return codes < 0, counts, parts


def _row_rule_names(
    schema: SchemaConfig, rules: CleanConfig, custom: list[CustomRule]
) -> list[str]:
    """The row-wise rules in the order _row_rules yields them."""
    names = ["missing_label"]
    names += [f"allowed_values:{column}" for column in rules.allowed_values]
    names += [f"range:{column}" for column in rules.ranges]
    if rules.missing.numeric == "quarantine" and schema.numeric:
        names.append("missing_numeric")
    if rules.missing.categorical == "quarantine" and schema.categorical:
        names.append("missing_categorical")
    return names + [rule.name for rule in custom]


def _duplicate_key(schema: SchemaConfig) -> list[str]:
    key = [*schema.id_columns, *schema.features, LABEL]
    return [*key, schema.time_column] if schema.time_column else key


def _rule_codes(
    data: Dataset,
    schema: SchemaConfig,
    rules: CleanConfig,
    custom: list[CustomRule],
    cache: Path,
    num_proc: int | None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per row: the index of the first row-wise rule that removes it (-1: none), and the
    hash of its duplicate key (None when drop_duplicates is off)."""
    out = data.with_format("pandas").map(
        _rule_batch,
        fn_kwargs={"schema": schema, "rules": rules, "custom": custom},
        batched=True,
        batch_size=MAP_BATCH,
        num_proc=num_proc,
        remove_columns=data.column_names,
        cache_file_name=str(cache),
        load_from_cache_file=False,
        new_fingerprint=cache.stem,
        desc="clean: row rules",
    )
    table = out.with_format("arrow")[:]
    codes = np.array(table.column(_CODE).to_numpy(), dtype=np.int16)
    hashes = table.column(_HASH).to_numpy() if _HASH in table.column_names else None
    return codes, hashes


def _rule_batch(
    frame: pd.DataFrame, schema: SchemaConfig, rules: CleanConfig, custom: list[CustomRule]
) -> pd.DataFrame:
    code = np.full(len(frame), -1, dtype=np.int16)
    for index, (_, mask) in enumerate(_row_rules(frame, schema, rules, custom)):
        code[np.asarray(mask, dtype=bool) & (code < 0)] = index
    out = {_CODE: code}
    if rules.drop_duplicates:
        key = frame[_duplicate_key(schema)]
        out[_HASH] = pd.util.hash_pandas_object(key, index=False).to_numpy()
    return pd.DataFrame(out)


def _duplicates(
    data: Dataset, live: np.ndarray, hashes: np.ndarray, schema: SchemaConfig
) -> np.ndarray:
    """Which of the `live` rows (kept by the row rules) repeat an earlier live row's key:
    pandas' duplicated(keep="first"). Only rows whose hash another row shares are read
    back, and compared exactly."""
    live_hashes = hashes[live]
    order = np.argsort(live_hashes, kind="stable")
    ordered = live_hashes[order]
    shared = np.zeros(len(live), dtype=bool)
    equal_next = ordered[1:] == ordered[:-1]
    shared[1:] |= equal_next
    shared[:-1] |= equal_next
    candidates = np.sort(order[shared])
    flagged = np.zeros(len(live), dtype=bool)
    if len(candidates):
        rows = data.select(live[candidates]).select_columns(_duplicate_key(schema)).to_pandas()
        flagged[candidates[rows.duplicated(keep="first").to_numpy()]] = True
    return flagged


def _row_rules(
    frame: pd.DataFrame, schema: SchemaConfig, rules: CleanConfig, custom: list[CustomRule]
):
    """Yield (rule name, rows it removes) for the row-wise rules, in _row_rule_names' order;
    a row counts for the first rule that removes it."""
    yield "missing_label", frame[LABEL].isna()
    for column, allowed in rules.allowed_values.items():
        values = frame[column]
        yield f"allowed_values:{column}", values.notna() & ~values.astype("string").isin(allowed)
    for column, bounds in rules.ranges.items():
        values = frame[column]
        too_low = values < bounds.min if bounds.min is not None else False
        too_high = values > bounds.max if bounds.max is not None else False
        yield f"range:{column}", (too_low | too_high) & values.notna()
    if rules.missing.numeric == "quarantine" and schema.numeric:
        yield "missing_numeric", frame[schema.numeric].isna().any(axis=1)
    if rules.missing.categorical == "quarantine" and schema.categorical:
        yield "missing_categorical", frame[schema.categorical].isna().any(axis=1)
    for rule in custom:
        yield rule.name, rule.removes(frame)


def _fillable(schema: SchemaConfig, rules: CleanConfig) -> list[str]:
    """Columns whose missing values are filled (not quarantined)."""
    columns = [c for c in schema.numeric if rules.missing.numeric != "quarantine"]
    return columns + [c for c in schema.categorical if rules.missing.categorical != "quarantine"]


def _fill_value(
    train: Dataset, keep: np.ndarray, column: str, schema: SchemaConfig, rules: CleanConfig
) -> object:
    """The statistic of the train rows the row rules kept (no test leakage), as pandas'
    median / mean / mode computed it."""
    values = arrow_column(train, column)
    if column in schema.numeric:
        numbers = values.to_numpy(zero_copy_only=False).astype(np.float64)[keep]
        present = ~np.isnan(numbers)
        if rules.missing.numeric == "zero" or not present.any():
            return 0.0
        if rules.missing.numeric == "median":
            return float(np.median(numbers[present]))
        return float(np.where(present, numbers, 0.0).sum() / present.sum())
    counts = pc.value_counts(values.filter(pa.array(keep)).drop_null())
    if rules.missing.categorical != "most_frequent" or not len(counts):
        return "__missing__"
    frequencies = counts.field("counts").to_numpy()
    # pandas' mode(): every most frequent value, sorted; the first is taken
    tied = counts.field("values").to_numpy(zero_copy_only=False)[frequencies == frequencies.max()]
    return str(sorted(tied)[0])


def _feature_column(
    data: Dataset, keep: np.ndarray, column: str, fills: dict[str, object]
) -> np.ndarray:
    """A numeric column's kept rows as float32, missing values filled."""
    values = arrow_column(data, column).to_numpy(zero_copy_only=False)[keep]
    if column in fills:
        values = np.where(np.isnan(values), fills[column], values)
    return values.astype(np.float32)


def _outliers(
    train: Dataset,
    keep: np.ndarray,
    fills: dict[str, object],
    schema: SchemaConfig,
    rules: CleanConfig,
    seed: int,
) -> np.ndarray:
    """Indices of the train rows IsolationForest flags, among the kept ones (train only:
    evaluation data is never thinned). The forest sees the whole feature matrix (float32, 4
    bytes a value) as before, so it grows the same trees; it scores in chunks of its own."""
    kept = np.flatnonzero(keep)
    if not schema.numeric or len(kept) < 10:
        return np.zeros(0, dtype=np.int64)
    x = np.empty((len(kept), len(schema.numeric)), dtype=np.float32)
    for j, column in enumerate(schema.numeric):
        x[:, j] = _feature_column(train, keep, column, fills)
    forest = IsolationForest(
        contamination=rules.outliers.contamination, random_state=seed, n_jobs=1
    )
    flagged = forest.fit_predict(x) == -1
    del x
    if rules.outliers.keep_positive:
        flagged &= arrow_column(train, LABEL).to_numpy(zero_copy_only=False)[keep] != 1
    return kept[flagged]


def _categories(
    train: Dataset, keep: np.ndarray, fills: dict[str, object], schema: SchemaConfig
) -> dict[str, list[str]]:
    """Each categorical column's values among the kept train rows, after filling."""
    categories = {}
    for column in schema.categorical:
        values = arrow_column(train, column).filter(pa.array(keep))
        seen = {v for v in values.unique().to_pylist() if v is not None}
        if values.null_count and column in fills:
            seen.add(str(fills[column]))
        categories[column] = sorted(seen)
    return categories


def _check_rule_columns(schema: SchemaConfig, rules: CleanConfig) -> None:
    for key, columns, allowed in (
        ("data.clean.ranges", rules.ranges, schema.numeric),
        ("data.clean.allowed_values", rules.allowed_values, schema.categorical),
    ):
        for column in columns:
            if column not in allowed:
                kind = "numeric" if key.endswith("ranges") else "categorical"
                raise PipelineError(
                    f"config key '{key}.{column}': {column!r} is not a declared {kind} column "
                    f"(data.schema.{kind})"
                )


def write_quarantine(
    path: Path, removed: list[Removed], splits: dict[str, Callable[[], Dataset]]
) -> None:
    """Stream the removed rows, with their rule and split, into one Parquet file (a report
    for people: it opens in anything). It has the input's columns even when nothing was
    removed; categoricals are strings, as the splits have them; outliers carry the values
    imputation gave them, as they were when the forest judged them."""
    opened = {name: open_split() for name, open_split in splits.items()}
    like = opened.get("train") or next(iter(opened.values()))
    columns = like.features.arrow_schema.remove_metadata()
    schema = columns.append(pa.field(RULE, pa.string())).append(pa.field(SPLIT, pa.string()))
    with pq.ParquetWriter(path, schema) as writer:
        for part in removed:
            for batch in iter_batches(opened[part.split], part.indices):
                for column, value in part.fills.items():
                    filled = pc.fill_null(
                        pc.if_else(pc.is_nan(batch[column]), None, batch[column])
                        if pa.types.is_floating(batch.schema.field(column).type)
                        else batch[column],
                        pa.scalar(value, batch.schema.field(column).type),
                    )
                    batch = batch.set_column(batch.schema.get_field_index(column), column, filled)
                n = len(batch)
                batch = batch.append_column(RULE, pa.array([part.rule] * n, pa.string()))
                batch = batch.append_column(SPLIT, pa.array([part.split] * n, pa.string()))
                writer.write_table(batch.select(schema.names).cast(schema))


def _encode_batch(
    frame: pd.DataFrame,
    indices: list[int],
    keep: np.ndarray,
    fills: dict[str, object],
    schema: SchemaConfig,
    categories: dict[str, list[str]],
) -> pd.DataFrame:
    """The kept rows of a batch, missing values filled, encoded: one-hot categoricals with
    the train split's categories (a category unseen in train is an all-zero row), numeric
    features as float32, the label as int64."""
    frame = frame[keep[np.asarray(indices)]]
    if fills:
        frame = frame.fillna(fills)
    columns = {c: frame[c].astype("float32") for c in schema.numeric}
    for c in schema.categorical:
        for value in categories[c]:
            columns[f"{c}={value}"] = (frame[c] == value).astype("float32")
    keep_columns = {c: frame[c] for c in [*schema.id_columns, schema.time_column] if c}
    out = pd.DataFrame({**keep_columns, **columns, LABEL: frame[LABEL].astype("int64")})
    return out.reset_index(drop=True)
