"""Raw tables in, canonical tables out: reading sources, checking them against the declared
schema, and splitting them. Every rejection is a PipelineError whose message names the
file/column/config key at fault and what was expected."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from datasets import Dataset

from pipelines.data.schema import LABEL, conform, conform_dataset, label_classes
from pipelines.data.sources import german_credit_csv, read_table
from pipelines.data.split import split_dataset, split_frame
from pipelines.errors import PipelineError
from pipelines.io import read_split, scratch_dir, write_frame
from pipelines.schema.data import SchemaConfig, SplitConfig

ORIGIN = "loans.csv"


def schema(**changes: object) -> SchemaConfig:
    """A small declared schema: label `defaulted`, one numeric and one categorical feature."""
    fields: dict[str, object] = {
        "label": "defaulted",
        "positive_class": "1",
        "numeric": ["income"],
        "categorical": ["region"],
    }
    fields.update(changes)
    return SchemaConfig(**fields)  # type: ignore[arg-type]


def loans(labels: list[object] | None = None) -> pd.DataFrame:
    labels = [1, 0, 0, 1] if labels is None else labels
    return pd.DataFrame(
        {
            "income": [1200, 3400, 560, 7800][: len(labels)],
            "region": ["north", "south", "north", "east"][: len(labels)],
            "defaulted": labels,
        }
    )


# --- conform: the declared schema is checked before anything else happens -----------------


def test_conform_names_a_missing_label_column_and_its_config_key() -> None:
    table = loans().rename(columns={"defaulted": "default_flag"})
    with pytest.raises(PipelineError) as caught:
        conform(table, schema(), ORIGIN)
    message = str(caught.value)
    assert ORIGIN in message
    assert "'defaulted'" in message
    assert "data.schema.label" in message
    assert "default_flag" in message, "the message lists the columns the table does have"


def test_conform_names_the_numeric_column_and_the_value_that_is_not_a_number() -> None:
    table = loans()
    table["income"] = ["1200", "3400", "about 500", "7800"]
    with pytest.raises(PipelineError) as caught:
        conform(table, schema(), ORIGIN)
    message = str(caught.value)
    assert ORIGIN in message
    assert "'income'" in message
    assert "'about 500'" in message
    assert "data.schema.numeric" in message


def test_conform_rejects_an_empty_table() -> None:
    header_only = loans().iloc[0:0]
    with pytest.raises(PipelineError, match="empty") as caught:
        conform(header_only, schema(), ORIGIN)
    assert ORIGIN in str(caught.value)


def test_conform_rejects_a_label_with_more_than_two_classes() -> None:
    with pytest.raises(PipelineError, match="must be binary") as caught:
        conform(loans([1, 0, 2, 1]), schema(), ORIGIN)
    message = str(caught.value)
    assert "'defaulted'" in message
    assert "3 classes" in message


def test_conform_rejects_a_label_that_never_takes_the_declared_positive_class() -> None:
    table = loans(["good", "bad", "bad", "good"])
    with pytest.raises(PipelineError) as caught:
        conform(table, schema(positive_class="risky"), ORIGIN)
    message = str(caught.value)
    assert "'defaulted'" in message
    assert "data.schema.positive_class='risky'" in message
    assert "bad, good" in message, "the message lists the values the label does take"


@pytest.mark.parametrize(
    ("labels", "positive_class"),
    [
        ([1, 0, 0, 1], "1"),
        ([1.0, 0.0, 0.0, 1.0], "1"),
        ([True, False, False, True], "1"),
        (["1", "0", "0", "1"], "1"),
        (["bad", "good", "good", "bad"], "bad"),
    ],
    ids=["ints", "floats", "bools", "strings", "class-names"],
)
def test_conform_maps_the_positive_class_to_one_and_the_other_to_zero(
    labels: list[object], positive_class: str
) -> None:
    out = conform(loans(labels), schema(positive_class=positive_class), ORIGIN)
    assert out[LABEL].dtype == np.float64
    assert out[LABEL].tolist() == [1.0, 0.0, 0.0, 1.0]


@pytest.mark.parametrize(
    ("labels", "positive_class", "negative"),
    [
        ([1, 0, 0, 1], "1", "0"),
        ([1.0, 0.0, None, 1.0], "1", "0"),
        (["bad", "good", "good", "bad"], "bad", "good"),
        (["yes", None, "no", "yes"], "no", "yes"),
    ],
    ids=["ints", "floats-with-missing", "class-names", "positive-named-no"],
)
def test_the_label_classes_name_the_negative_class_as_the_table_has_it(
    labels: list[object], positive_class: str, negative: str
) -> None:
    table = loans(labels)
    classes = label_classes(table["defaulted"], schema(positive_class=positive_class), ORIGIN)
    assert classes == {"positive": positive_class, "negative": negative}


def test_conform_keeps_declared_columns_only_with_numerics_as_float64() -> None:
    table = loans()
    table["internal_note"] = "drop me"
    out = conform(table, schema(), ORIGIN)
    assert list(out.columns) == ["income", "region", LABEL]
    assert out["income"].dtype == np.float64
    assert out["income"].tolist() == [1200.0, 3400.0, 560.0, 7800.0]
    assert out["region"].tolist() == ["north", "south", "north", "east"]


def test_conform_keeps_a_missing_label_as_nan_for_clean_to_quarantine() -> None:
    out = conform(loans([1, None, 0, 1]), schema(), ORIGIN)
    assert out[LABEL].isna().tolist() == [False, True, False, False]
    assert out[LABEL].dropna().tolist() == [1.0, 0.0, 1.0]


# --- read_table: csv, parquet, json records and JSON lines, through `datasets` builders ------

TABLE = pd.DataFrame({"income": [1200.5, 3400.25, 560.75], "region": ["north", "south", "east"]})


def _csv(path: Path) -> None:
    TABLE.to_csv(path, index=False)


def _parquet(path: Path) -> None:
    TABLE.to_parquet(path, index=False)


def _json_records(path: Path) -> None:
    path.write_text(json.dumps(TABLE.to_dict(orient="records"), indent=2))


def _json_lines(path: Path) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in TABLE.to_dict(orient="records")))


@pytest.mark.parametrize(
    ("name", "write"),
    [
        ("table.csv", _csv),
        ("table.parquet", _parquet),
        ("table.json", _json_records),
        ("table.jsonl", _json_lines),
        ("table_lines.json", _json_lines),
    ],
    ids=["csv", "parquet", "json-records", "jsonl", "json-lines-in-a-.json-file"],
)
def test_read_table_reads_each_supported_format_from_its_suffix(
    tmp_path: Path, name: str, write: Callable[[Path], None]
) -> None:
    path = tmp_path / name
    write(path)
    loaded = read_table(path, None, tmp_path / "work")
    assert isinstance(loaded, Dataset)
    assert loaded.cache_files, "memory-mapped from an Arrow file, not held in memory"
    pd.testing.assert_frame_equal(loaded.to_pandas(), TABLE, check_dtype=False)
    assert loaded.to_pandas()["income"].dtype == np.float64


def test_read_table_uses_the_declared_format_over_the_suffix(tmp_path: Path) -> None:
    path = tmp_path / "export.txt"
    _csv(path)
    pd.testing.assert_frame_equal(
        read_table(path, "csv", tmp_path / "work").to_pandas(), TABLE, check_dtype=False
    )


def test_read_table_rejects_an_unknown_suffix_and_says_which_key_to_set(tmp_path: Path) -> None:
    path = tmp_path / "table.xlsx"
    path.write_bytes(b"PK\x03\x04")
    with pytest.raises(PipelineError) as caught:
        read_table(path, None, tmp_path / "work")
    message = str(caught.value)
    assert str(path) in message
    assert "data.source.format" in message


def test_read_table_names_the_path_of_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "table.csv"
    with pytest.raises(PipelineError) as caught:
        read_table(path, None, tmp_path / "work")
    message = str(caught.value)
    assert str(path) in message
    assert "not found" in message
    assert "data.source.path" in message


def test_read_table_names_the_path_and_format_of_a_file_it_cannot_parse(tmp_path: Path) -> None:
    path = tmp_path / "table.parquet"
    _csv(path)  # CSV text behind a .parquet suffix
    with pytest.raises(PipelineError) as caught:
        read_table(path, None, tmp_path / "work")
    message = str(caught.value)
    assert str(path) in message
    assert "could not read as parquet" in message


# --- a CSV file the builder cannot read: the line, the byte and what was expected -------------


def _lines(path: Path, *lines: bytes) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_a_csv_that_is_not_utf8_is_named_with_its_byte_offset_line_and_utf8(
    tmp_path: Path,
) -> None:
    header, first = b"income,region,defaulted", b"1200,north,1"
    path = _lines(tmp_path / "loans.csv", header, first, "900,Bogot\u00e1,0".encode("latin-1"))
    with pytest.raises(PipelineError) as caught:
        read_table(path, "csv", tmp_path / "work")
    message = str(caught.value)
    offset = len(header) + 1 + len(first) + 1 + len(b"900,Bogot")
    assert str(path) in message
    assert f"not UTF-8 (byte {offset} is 0xe1, line 3)" in message
    assert "expected a UTF-8 file" in message
    assert "\n" not in message


def test_a_csv_row_with_more_fields_than_the_header_is_named_by_line_and_counts(
    tmp_path: Path,
) -> None:
    path = _lines(
        tmp_path / "loans.csv",
        b"income,region,defaulted",
        b"1200,north,1",
        b'3400,"south, coast",0',  # a quoted comma is one field
        b"560,north,east,0",
        b"7800,east,1",
    )
    with pytest.raises(PipelineError) as caught:
        read_table(path, "csv", tmp_path / "work")
    message = str(caught.value)
    assert str(path) in message
    assert "line 4 has 4 fields but the header has 3" in message
    assert "\n" not in message


def test_a_csv_header_that_repeats_a_column_names_the_duplicate(tmp_path: Path) -> None:
    path = _lines(tmp_path / "loans.csv", b"income,share,region,income", b"1200,0.5,north,900")
    with pytest.raises(PipelineError) as caught:
        read_table(path, "csv", tmp_path / "work")
    message = str(caught.value)
    assert str(path) in message
    assert "column 'income' appears twice in the header (columns 1 and 4)" in message
    assert "share" not in message, "the declared column that is present is not blamed"


def test_a_well_formed_csv_with_a_short_row_and_a_quoted_newline_still_reads(
    tmp_path: Path,
) -> None:
    path = _lines(
        tmp_path / "loans.csv",
        b"income,region,note",
        b'1200,north,"two\nlines"',
        b"3400,south",  # short: read with a missing value, as the builder always did
    )
    table = read_table(path, "csv", tmp_path / "work").to_pandas()
    assert table["note"].tolist()[0] == "two\nlines"
    assert pd.isna(table["note"].tolist()[1])


# --- the packaged German credit table -------------------------------------------------------


def test_german_credit_csv_holds_the_1000_uci_rows_with_a_creditability_label() -> None:
    table = pd.read_csv(german_credit_csv())
    assert len(table) == 1000
    assert "creditability" in table.columns
    assert set(table["creditability"]) == {"good", "bad"}


# --- split_frame ----------------------------------------------------------------------------


def labelled(n_rows: int, positive_rate: float, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01")
    return pd.DataFrame(
        {
            "row": np.arange(n_rows),
            # shuffled, so a split that ignored time would interleave the splits
            "ts": start + pd.to_timedelta(rng.permutation(n_rows), unit="h"),
            "income": rng.normal(size=n_rows),
            LABEL: (rng.random(n_rows) < positive_rate).astype("float64"),
        }
    )


def test_time_split_puts_no_row_in_train_later_than_any_validation_or_test_row() -> None:
    frame = labelled(1000, 0.1)
    parts = split_frame(
        frame, SplitConfig(method="time"), SchemaConfig(time_column="ts", numeric=["income"]), 0
    )
    assert parts["train"]["ts"].max() <= parts["val"]["ts"].min()
    assert parts["val"]["ts"].max() <= parts["test"]["ts"].min()
    assert [len(parts[name]) for name in ("train", "val", "test")] == [700, 150, 150]
    assert sorted(pd.concat(parts.values())["row"]) == list(range(1000))


def test_stratified_split_keeps_the_positive_rate_within_two_points_in_every_split() -> None:
    frame = labelled(2000, 0.1)
    overall = frame[LABEL].mean()
    parts = split_frame(
        frame, SplitConfig(method="stratified"), SchemaConfig(numeric=["income"]), 0
    )
    for name, part in parts.items():
        assert abs(part[LABEL].mean() - overall) < 0.02, name
    assert sorted(pd.concat(parts.values())["row"]) == list(range(2000))


def test_split_rejects_too_few_rows_naming_the_split_config() -> None:
    with pytest.raises(PipelineError) as caught:
        split_frame(labelled(3, 0.5), SplitConfig(), SchemaConfig(numeric=["income"]), 0)
    message = str(caught.value)
    assert "3 rows are too few" in message
    assert "data.split" in message


def test_stratified_split_rejects_a_class_too_rare_to_stratify_naming_the_split_config() -> None:
    # 20 rows pass the row-count check, but a single positive cannot go to every split
    frame = labelled(20, 0.0)
    frame.loc[0, LABEL] = 1.0
    with pytest.raises(PipelineError) as caught:
        split_frame(frame, SplitConfig(method="stratified"), SchemaConfig(numeric=["income"]), 0)
    assert "data.split" in str(caught.value)


# --- the same on `datasets`: what ingest runs -------------------------------------------------


def as_dataset(frame: pd.DataFrame, path: Path) -> Dataset:
    write_frame(path, frame)
    return read_split(path)


@pytest.mark.parametrize("method", ["time", "stratified"])
def test_split_dataset_gives_the_rows_split_frame_gives_in_the_same_order(
    tmp_path: Path, method: str
) -> None:
    frame = labelled(2000, 0.1)
    schema = SchemaConfig(time_column="ts", numeric=["income"])
    split = SplitConfig(method=method)
    expected = split_frame(frame, split, schema, 3)
    indices = split_dataset(as_dataset(frame, tmp_path / "t.arrow"), split, schema, 3)
    for name, part in expected.items():
        assert frame["row"].to_numpy()[indices[name]].tolist() == part["row"].tolist(), name


def test_conform_dataset_matches_conform_across_batches_and_checks_classes_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of 3 rows: several hold one class only, which is fine; the table has two."""
    import pipelines.data.schema

    monkeypatch.setattr(pipelines.data.schema, "MAP_BATCH", 3)
    table = pd.concat([loans(["good", "good", "good", "bad"])] * 3, ignore_index=True)
    raw = as_dataset(table, tmp_path / "raw.arrow")
    with scratch_dir(tmp_path / ".staging") as work:
        out, classes = conform_dataset(raw, schema(positive_class="bad"), ORIGIN, work, None)
        got = out.to_pandas()
    want = conform(table, schema(positive_class="bad"), ORIGIN)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    assert classes == {"positive": "bad", "negative": "good"}


def test_conform_dataset_names_the_table_row_of_a_bad_value_in_a_later_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipelines.data.schema

    monkeypatch.setattr(pipelines.data.schema, "MAP_BATCH", 3)
    table = pd.concat([loans()] * 3, ignore_index=True)
    table["income"] = table["income"].astype(str)
    table.loc[10, "income"] = "about 500"
    raw = as_dataset(table, tmp_path / "raw.arrow")
    with scratch_dir(tmp_path / ".staging") as work, pytest.raises(PipelineError) as caught:
        conform_dataset(raw, schema(), ORIGIN, work, None)
    assert "'about 500' at row 10" in str(caught.value)


def test_conform_dataset_names_a_one_class_label_with_its_labelled_row_count(
    tmp_path: Path,
) -> None:
    raw = as_dataset(loans([1, 1, None, 1]), tmp_path / "raw.arrow")
    with scratch_dir(tmp_path / ".staging") as work, pytest.raises(PipelineError) as caught:
        conform_dataset(raw, schema(), ORIGIN, work, None)
    assert "in 3 labelled rows" in str(caught.value)
