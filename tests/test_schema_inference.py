"""A table with no declared feature columns: ingest infers them (numbers numeric, strings and
booleans categorical by type; constant, id-like and high-cardinality columns left out with a
note), prints what it inferred and writes it into schema.json, and profile and clean use
exactly those lists (pipelines/data/schema_inference.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from datasets import Dataset

from pipelines.compose import compose_params
from pipelines.config import PipelineConfig, load_params
from pipelines.data.schema_inference import infer_schema, wants_inference
from pipelines.errors import PipelineError
from pipelines.layout import Layout
from pipelines.schema.data import SchemaConfig
from tests.modality_runs import run

ORIGIN = "applicants.csv"


def applicants(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """A credit-application table as a user might bring it: a row key, a customer code, numbers,
    categories, a flag, a constant column, free-text notes and the label."""
    rng = np.random.default_rng(seed)
    income = rng.normal(3000, 900, n).round(2)
    region = rng.choice(["north", "south", "east", "west"], n)
    approved = ((income > 3000) ^ (rng.random(n) < 0.1)).astype(int)
    return pd.DataFrame(
        {
            "application_id": np.arange(1000, 1000 + n),  # a row key: consecutive integers
            "customerId": rng.permutation(10 * n)[:n] + 7,  # distinct, not consecutive: named
            "income": income,
            "age": rng.integers(18, 80, n),
            "region": region,
            "has_guarantor": rng.random(n) < 0.3,
            "currency": "EUR",
            "note": [f"called on day {i} about case {rng.integers(1e6)}" for i in range(n)],
            "branch": [f"branch-{i % 120}" for i in range(n)],  # 120 > max_categories 50
            "approved": approved,
        }
    )


def test_numbers_are_numeric_strings_and_flags_categorical_and_the_rest_left_out_with_a_note():
    table = applicants()
    schema, inferred = infer_schema(
        Dataset.from_pandas(table), SchemaConfig(label="approved"), ORIGIN
    )
    assert schema.numeric == inferred["numeric"] == ["income", "age"]
    assert schema.categorical == inferred["categorical"] == ["region", "has_guarantor"]
    left_out = inferred["left_out"]
    assert list(left_out) == ["application_id", "customerId", "currency", "note", "branch"]
    assert left_out["application_id"].startswith("id-like")
    assert left_out["customerId"].startswith("id-like")
    assert left_out["currency"].startswith("constant")
    assert left_out["note"].startswith("id-like")
    assert "120 distinct strings > data.schema.max_categories 50" in left_out["branch"]


def test_declared_columns_keep_their_declaration_and_inference_fills_in_the_rest() -> None:
    table = applicants()
    declared = SchemaConfig(
        label="approved", categorical=["age"], id_columns=["application_id"], infer=True
    )
    schema, inferred = infer_schema(Dataset.from_pandas(table), declared, ORIGIN)
    assert schema.categorical == ["age", "region", "has_guarantor"]
    assert schema.numeric == ["income"]
    assert "application_id" not in inferred["left_out"], "a declared id is not a note"
    more = SchemaConfig(label="approved", max_categories=200)
    _, wider = infer_schema(Dataset.from_pandas(table), more, ORIGIN)
    assert "branch" in wider["categorical"]


def test_inference_runs_when_asked_or_when_no_feature_is_declared() -> None:
    assert wants_inference(SchemaConfig())
    assert wants_inference(SchemaConfig(numeric=["income"], infer=True))
    assert not wants_inference(SchemaConfig(numeric=["income"]))


def test_a_table_with_nothing_usable_names_what_was_left_out() -> None:
    table = pd.DataFrame({"id": range(50), "kind": "x", "label": [0, 1] * 25})
    with pytest.raises(PipelineError) as caught:
        infer_schema(Dataset.from_pandas(table), SchemaConfig(), ORIGIN)
    message = str(caught.value)
    assert ORIGIN in message and "no usable feature column" in message
    assert "id: id-like" in message and "kind: constant" in message
    assert "data.schema.numeric" in message


# --- through the stages -------------------------------------------------------------------------


def table_config(tmp: Path, *extra: str) -> PipelineConfig:
    params = tmp / "params.yaml"
    compose_params(params, ["data=my_table"])
    csv = tmp / ORIGIN
    applicants().to_csv(csv, index=False)
    return load_params(
        params,
        [f"data.source.path={csv}", "data.schema.label=approved", "logger.wandb.enabled=false",
         *extra],
    )  # fmt: skip


def test_ingest_prints_and_records_the_inferred_schema_and_later_stages_use_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = table_config(tmp_path)
    run("ingest", cfg, tmp_path)
    printed = capsys.readouterr().out
    assert "data.schema inferred from" in printed
    assert "numeric (2): income, age" in printed
    assert "categorical (2): region, has_guarantor" in printed
    assert "left out currency: constant" in printed
    written = json.loads(Layout(tmp_path).schema_file.read_text())
    assert written["schema"]["numeric"] == ["income", "age"]
    assert written["schema"]["categorical"] == ["region", "has_guarantor"]
    assert set(written["inferred"]["left_out"]) == {
        "application_id", "customerId", "currency", "note", "branch"
    }  # fmt: skip
    profile = run("profile", cfg, tmp_path)
    assert profile["n_features"] == 4
    clean = run("clean", cfg, tmp_path)
    features = json.loads((Layout(tmp_path).cleaned / "features.json").read_text())["features"]
    assert clean["n_features"] == len(features)
    assert features[:2] == ["income", "age"]
    assert {f.split("=")[0] for f in features[2:]} == {"region", "has_guarantor"}
