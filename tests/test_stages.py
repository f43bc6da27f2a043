"""Every stage on small data, in process, into a temporary root (what `dvc repro` runs)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
import torch
import yaml

from pipelines import tensorrt_engine
from pipelines.cleaning import clean_splits
from pipelines.config import (
    CleanConfig,
    OutlierConfig,
    PipelineConfig,
    RangeRule,
    SchemaConfig,
    ThresholdConfig,
    load_params,
)
from pipelines.data.schema import LABEL
from pipelines.errors import PipelineError
from pipelines.evaluation import classification_metrics
from pipelines.layout import SPLITS, Layout
from pipelines.thresholds import choose_threshold
from stages import augment, clean, evaluate, export, ingest, profile, quantize, train
from tests.small import REPO, small_params

PIPELINE = (ingest, profile, clean, augment, train, quantize, evaluate, export)


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> PipelineConfig:
    return load_params(small_params(tmp_path_factory.mktemp("params") / "params.yaml"))


@pytest.fixture(scope="module")
def layout(cfg: PipelineConfig, tmp_path_factory: pytest.TempPathFactory) -> Layout:
    layout = Layout(tmp_path_factory.mktemp("run"))
    for stage in PIPELINE:
        stage.run(cfg, layout)
    return layout


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def test_ingest_writes_time_ordered_splits_with_the_canonical_label(layout: Layout) -> None:
    parts = {name: pd.read_parquet(layout.split(layout.ingested, name)) for name in SPLITS}
    assert parts["train"]["tx_datetime"].max() <= parts["val"]["tx_datetime"].min()
    assert parts["val"]["tx_datetime"].max() <= parts["test"]["tx_datetime"].min()
    assert set(parts["train"][LABEL].unique()) <= {0.0, 1.0}
    assert 0.002 < parts["train"][LABEL].mean() < 0.05
    assert read(layout.schema_file)["rows"]["train"] == len(parts["train"])


def test_profile_reports_statistics_drift_and_balance_with_plots(layout: Layout) -> None:
    summary = read(layout.profile_metrics)
    report = read(layout.profile_report / "profile.json")
    assert summary["rows"] == sum(s["rows"] for s in report["splits"].values())
    column = report["columns"]["tx_amount"]
    assert {"missing_fraction", "mean", "drift_psi", "drift_ks", "corr_with_label"} <= set(column)
    assert (layout.profile_report / "profile.png").stat().st_size > 10_000
    assert "<table" in (layout.profile_report / "profile.html").read_text()


def test_clean_accounts_for_every_row_it_removes(layout: Layout) -> None:
    metrics = read(layout.clean_metrics)
    quarantine = pd.read_parquet(layout.quarantine)
    removed = sum(metrics["rows_in"][s] - metrics["rows_out"][s] for s in SPLITS)
    assert removed == len(quarantine) == metrics["quarantined"]
    assert set(quarantine["_rule"]) <= {"isolation_forest_outlier", "duplicate"}
    assert (quarantine.loc[quarantine["_rule"] == "isolation_forest_outlier", LABEL] == 0).all()
    assert (
        metrics["rows_in"]["test"] == metrics["rows_out"]["test"]
    )  # evaluation data is never thinned


def test_clean_rules_quarantine_with_the_rule_that_removed_each_row() -> None:
    schema = SchemaConfig(label="y", numeric=["amount"], categorical=["kind"])
    frame = pd.DataFrame(
        {
            "amount": [1.0, -5.0, 2.0, 2.0, np.nan, 3.0],
            "kind": ["a", "a", "b", "b", "a", "zzz"],
            LABEL: [0.0, 0.0, 1.0, 1.0, 0.0, np.nan],
        }
    )
    rules = CleanConfig(
        ranges={"amount": RangeRule(min=0.0)},
        allowed_values={"kind": ["a", "b"]},
        outliers=OutlierConfig(enabled=False),
    )
    splits = {"train": frame, "val": frame.iloc[[0, 2]], "test": frame.iloc[[0, 2]]}
    result = clean_splits(splits, schema, rules, seed=0)
    train_rules = result.quarantine.query("_split == 'train'")["_rule"].tolist()
    assert train_rules == ["missing_label", "range:amount", "duplicate"]
    assert result.splits["train"]["amount"].tolist() == [1.0, 2.0, 1.5]  # NaN -> train median
    assert result.imputed == {"amount": 1}


def test_clean_rejects_a_rule_on_an_undeclared_column() -> None:
    schema = SchemaConfig(label="y", numeric=["amount"])
    frame = pd.DataFrame({"amount": [1.0], LABEL: [0.0]})
    rules = CleanConfig(ranges={"amout": RangeRule(min=0.0)})
    with pytest.raises(PipelineError, match="data.clean.ranges.amout"):
        clean_splits({"train": frame, "val": frame, "test": frame}, schema, rules, seed=0)


def test_augment_oversamples_only_the_train_split(cfg: PipelineConfig, layout: Layout) -> None:
    metrics = read(layout.augment_metrics)
    target = cfg.data.augment.sampling_strategy
    assert metrics["positive_fraction_after"] == pytest.approx(target / (1 + target), rel=0.02)
    assert metrics["rows_after"] > metrics["rows_before"]
    assert not (layout.augmented_train.parent / "val.parquet").exists()


def test_train_writes_a_weights_only_checkpoint_and_curves(layout: Layout) -> None:
    payload = torch.load(layout.checkpoint, weights_only=True)
    assert payload["hyper_parameters"]["model"]["name"] == "moe_mlp"
    metrics = read(layout.train_metrics)
    assert 0 < metrics["val"]["auprc"] <= 1 and 0.5 < metrics["val"]["auroc"] <= 1
    history = pd.read_csv(layout.train_history)
    assert len(history) == metrics["epochs_run"] and "val_auprc" in history


def test_quantize_writes_smaller_int8_models(layout: Layout) -> None:
    sizes = read(layout.quantize_metrics)["size_bytes"]
    assert set(sizes) == {"fp32", "int8_dynamic", "int8_static"}
    assert sizes["int8_dynamic"] < 0.5 * sizes["fp32"]


def test_evaluate_compares_every_variant_on_the_test_split(layout: Layout) -> None:
    report = read(layout.evaluate_metrics)
    variants = report["variants"]
    assert set(variants) == {"pytorch_fp32", "onnx_fp32", "onnx_int8_dynamic", "onnx_int8_static"}
    assert variants["onnx_fp32"]["auprc"] == pytest.approx(
        variants["pytorch_fp32"]["auprc"], abs=1e-4
    )
    for metrics in variants.values():
        assert {
            "auroc",
            "auprc",
            "f1",
            "recall_at_0.01_fpr",
            "size_bytes",
            "auprc_retained_vs_fp32",
        } <= set(metrics)
    latency = read(layout.latency_report / "latency.json")["variants"]
    assert latency["onnx_fp32"]["batch256"]["p50_ms"] > 0
    for variant in report["variants"]:
        roc = pd.read_csv(layout.roc_curves / f"{variant}.csv")
        assert roc.columns.tolist() == ["fpr", "tpr"]
        assert pd.read_csv(layout.pr_curves / f"{variant}.csv").columns.tolist() == [
            "recall",
            "precision",
        ]
    headline = read(layout.headline_metrics)["test"]
    assert set(headline) == set(report["variants"])
    assert set(headline["onnx_fp32"]) == {"auroc", "auprc", "f1", "threshold", "auprc_kept", "kib"}
    assert (layout.evaluate_report / "curves.png").exists()


def test_export_verifies_parity_and_hashes_its_artifacts(layout: Layout) -> None:
    card = read(layout.export_dir / "model_card.json")
    assert set(card["parity_max_abs_diff"]) == {"1", "7", "256"}
    assert max(card["parity_max_abs_diff"].values()) <= 1e-4
    digest = hashlib.sha256((layout.export_dir / "model.onnx").read_bytes()).hexdigest()
    assert card["sha256"]["model.onnx"] == digest
    if not torch.cuda.is_available():
        assert card["tensorrt"].startswith("skipped:")
    assert "# Model card" in (layout.export_dir / "model_card.md").read_text()


def test_export_ships_the_validation_threshold_in_the_card_and_the_onnx_metadata(
    layout: Layout,
) -> None:
    card = read(layout.export_dir / "model_card.json")
    evaluation = read(layout.evaluate_metrics)
    threshold = evaluation["variants"]["onnx_fp32"]["threshold"]
    assert card["decision_threshold"] == threshold and 0 < threshold < 1
    assert card["threshold_rule"] == "max_f1"
    props = {
        p.key: p.value
        for p in onnx.load(str(layout.export_dir / "model.onnx")).metadata_props
    }
    assert json.loads(props["features"]) == card["inputs"]["features"]
    assert json.loads(props["decision_threshold"]) == threshold
    assert json.loads(props["label_map"])["1"] == card["positive_class"]
    assert props["config_sha256"] == card["config_sha256"]
    assert props["model_version"] == card["version"]
    assert props["producer_version"].startswith("moe-pipelines")


@pytest.mark.parametrize(
    "override",
    [
        "trainer.max_epochs=5",
        "trainer.precision=bf16-mixed",
        "strategy.name=ddp",
        "callbacks.early_stopping.patience=5",
        "callbacks.checkpoint.monitor=val/auroc",
        "train.lr=0.01",
        "data.profile.gates.max_drift_psi=0.3",
    ],
)
def test_the_model_version_changes_with_any_setting_that_shapes_the_model(override: str) -> None:
    base = load_params(REPO / "params.yaml")
    changed = load_params(REPO / "params.yaml", [override])
    assert export.config_sha256(changed) != export.config_sha256(base)


@pytest.mark.parametrize(
    "override",
    ["callbacks.checkpoint.resume=false", "logger.csv=false", "evaluate.threshold.rule=fixed"],
)
def test_the_model_version_ignores_settings_that_do_not_change_the_model(override: str) -> None:
    base = load_params(REPO / "params.yaml")
    assert export.config_sha256(load_params(REPO / "params.yaml", [override])) == (
        export.config_sha256(base)
    )


def test_dvc_reruns_export_when_any_setting_its_model_version_digests_changes() -> None:
    stage = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["export"]
    assert {*export.MODEL_CONFIG_GROUPS, "seed"} <= set(stage["params"])


def test_the_label_map_names_each_output_class_by_its_value_in_the_source(
    layout: Layout, tmp_path: Path
) -> None:
    # the simulator's label is 1/0
    card = read(layout.export_dir / "model_card.json")
    assert card["label_map"] == {"1": "1", "0": "0"}
    # German credit's is bad/good (positive_class: bad)
    credit = load_params(small_params(tmp_path / "params.yaml", groups=["data=german_credit"]))
    credit_layout = Layout(tmp_path / "credit")
    ingest.run(credit, credit_layout)
    assert read(credit_layout.schema_file)["label_classes"] == {
        "positive": "bad",
        "negative": "good",
    }
    assert export._label_map(credit_layout) == {"1": "bad", "0": "good"}


def test_threshold_rules_pick_the_threshold_their_name_says() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(4000) < 0.06).astype(np.int64)
    p = np.clip(0.04 + 0.5 * y * rng.random(4000) + 0.2 * rng.random(4000), 0, 1)
    best_f1 = choose_threshold(y, p, ThresholdConfig(rule="max_f1"))
    for other in (0.2, 0.3, 0.5, 0.7):
        assert f1_at(y, p, best_f1) >= f1_at(y, p, other)
    low_fpr = choose_threshold(y, p, ThresholdConfig(rule="target_fpr", target_fpr=0.01))
    assert np.mean(p[y == 0] >= low_fpr) <= 0.01
    cheap_misses = choose_threshold(
        y, p, ThresholdConfig(rule="min_cost", cost_false_positive=1, cost_false_negative=1)
    )
    costly_misses = choose_threshold(
        y, p, ThresholdConfig(rule="min_cost", cost_false_positive=1, cost_false_negative=50)
    )
    assert costly_misses < cheap_misses  # missing a fraud costs more: flag more
    assert choose_threshold(y, p, ThresholdConfig(rule="fixed", fixed=0.4)) == 0.4


def f1_at(y: np.ndarray, p: np.ndarray, threshold: float) -> float:
    return classification_metrics(y, p, 0.01, threshold)["f1"]


def test_f1_on_an_imbalanced_split_is_not_zero_with_the_chosen_threshold(layout: Layout) -> None:
    evaluation = read(layout.evaluate_metrics)
    for name, metrics in evaluation["variants"].items():
        assert metrics["f1"] > 0.1, name
        assert {"precision", "recall", "fpr", "threshold"} <= set(metrics)


def test_same_config_and_seed_give_the_same_training_metrics(
    cfg: PipelineConfig, layout: Layout, tmp_path: Path
) -> None:
    again = Layout(tmp_path)
    for stage in (ingest, clean, augment, train):
        stage.run(cfg, again)
    assert read(again.train_metrics) == read(layout.train_metrics)


def test_a_stage_that_fails_midway_publishes_nothing(
    cfg: PipelineConfig, layout: Layout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = Layout(tmp_path)
    for path in (layout.checkpoint, layout.features_file, layout.split(layout.cleaned, "val")):
        dest = tmp_path / path.relative_to(layout.root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(path.read_bytes())

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(quantize, "static_int8", interrupted)
    with pytest.raises(KeyboardInterrupt):
        quantize.run(cfg, target)
    assert not target.onnx_dir.exists() and not target.quantize_metrics.exists()
    assert not target.staging.exists()


@pytest.mark.gpu
@pytest.mark.skipif(
    tensorrt_engine.availability() is not None,
    reason=f"needs a CUDA GPU and TensorRT: {tensorrt_engine.availability()}",
)
def test_export_builds_a_tensorrt_engine_on_a_gpu(layout: Layout) -> None:
    card = read(layout.export_dir / "model_card.json")
    assert card["tensorrt"].startswith("built"), card["tensorrt"]
