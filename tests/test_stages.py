"""Every stage on small data, in process, into a temporary root (what `dvc repro` runs)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from functools import partial
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
import torch
import yaml

from pipelines import stage_times, tensorrt_engine
from pipelines.config import PipelineConfig, load_params
from pipelines.data.schema import LABEL
from pipelines.datamodule import model_inputs
from pipelines.errors import PipelineError
from pipelines.evaluation import classification_metrics, predict_all
from pipelines.io import read_split, scratch_dir, write_frame
from pipelines.layout import SPLITS, Layout
from pipelines.modalities.registry import STAGES
from pipelines.modalities.tabular import baselines
from pipelines.modalities.tabular.cleaning import CleanResult, clean_splits, write_quarantine
from pipelines.modalities.tabular.config import CleanConfig, MissingConfig, OutlierConfig, RangeRule
from pipelines.modalities.tabular.plugins import export as tabular_export
from pipelines.modalities.tabular.plugins import quantize as tabular_quantize
from pipelines.onnx_export import INPUT
from pipelines.plots import pareto_front
from pipelines.runtime import session
from pipelines.schema.data import SchemaConfig
from pipelines.schema.evaluation import VARIANTS as schema_variants
from pipelines.schema.evaluation import SelectConfig, ThresholdConfig
from pipelines.selection import report_row, select_multiclass_variant, select_variant
from pipelines.summary import print_summary
from pipelines.thresholds import choose_threshold
from pipelines.training import load_checkpoint
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
    parts = {name: read_split(layout.split(layout.ingested, name)).to_pandas() for name in SPLITS}
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
    by_rule = sum(n for counts in metrics["removed_by_rule"].values() for n in counts.values())
    assert by_rule == metrics["quarantined"], "a removed row counts for one rule only"
    assert set(quarantine["_rule"]) <= {"isolation_forest_outlier", "duplicate"}
    assert (quarantine.loc[quarantine["_rule"] == "isolation_forest_outlier", LABEL] == 0).all()
    assert (
        metrics["rows_in"]["test"] == metrics["rows_out"]["test"]
    )  # evaluation data is never thinned


def clean_frames(
    splits: dict[str, pd.DataFrame],
    schema: SchemaConfig,
    rules: CleanConfig,
    root: Path,
    num_proc: int | None = None,
) -> tuple[CleanResult, dict[str, pd.DataFrame], pd.DataFrame]:
    """clean_splits on small frames: (result, cleaned splits, quarantine) as DataFrames."""
    for name, frame in splits.items():
        write_frame(root / "in" / f"{name}.arrow", frame.reset_index(drop=True))
    opened = {name: partial(read_split, root / "in" / f"{name}.arrow") for name in splits}
    with scratch_dir(root / ".staging") as work:
        result = clean_splits(
            opened, schema, rules, 0, work, lambda name: root / "out" / f"{name}.arrow", num_proc
        )
    write_quarantine(root / "quarantine.parquet", result.removed, opened)
    cleaned = {name: read_split(root / "out" / f"{name}.arrow").to_pandas() for name in splits}
    return result, cleaned, pd.read_parquet(root / "quarantine.parquet")


def test_clean_rules_quarantine_with_the_rule_that_removed_each_row(tmp_path: Path) -> None:
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
    result, cleaned, quarantine = clean_frames(splits, schema, rules, tmp_path)
    train_rules = quarantine.query("_split == 'train'")["_rule"].tolist()
    assert train_rules == ["missing_label", "range:amount", "duplicate"]
    assert cleaned["train"]["amount"].tolist() == [1.0, 2.0, 1.5]  # NaN -> train median
    assert result.imputed == {"amount": 1}
    # a row breaking two rules counts once, for the first: row 5 (no label, kind 'zzz')
    assert result.counts["train"]["allowed_values:kind"] == 0


def dirty_frame(rows: int, seed: int) -> pd.DataFrame:
    """Every rule has work: missing labels and values, out-of-range and unknown values,
    duplicates (also far apart, in different batches), outliers."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "amount": rng.lognormal(3.0, 1.0, rows),
            "age": rng.integers(18, 90, rows).astype(float),
            "kind": rng.choice(["a", "b", "c"], rows),
            LABEL: (rng.random(rows) < 0.2).astype(float),
        }
    )
    frame.loc[rng.choice(rows, rows // 20, replace=False), "amount"] = np.nan
    frame.loc[rng.choice(rows, rows // 20, replace=False), "kind"] = None
    frame.loc[rng.choice(rows, rows // 50, replace=False), "age"] = 150.0
    frame.loc[rng.choice(rows, rows // 50, replace=False), "kind"] = "zzz"
    frame.loc[rng.choice(rows, rows // 50, replace=False), LABEL] = np.nan
    copies = rng.choice(rows, rows // 10, replace=False)
    return pd.concat([frame, frame.iloc[copies]], ignore_index=True)


def test_clean_with_two_processes_gives_the_same_data_as_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """num_proc=2 splits every batched map between two processes: same rows, same order, same
    quarantine, same counts as num_proc=None. Small batches, so duplicates cross batches."""
    import pipelines.modalities.tabular.cleaning

    monkeypatch.setattr(pipelines.modalities.tabular.cleaning, "MAP_BATCH", 97)
    schema = SchemaConfig(label="y", numeric=["amount", "age"], categorical=["kind"])
    rules = CleanConfig(
        ranges={"age": RangeRule(min=18.0, max=120.0)},
        allowed_values={"kind": ["a", "b", "c"]},
        outliers=OutlierConfig(enabled=True, contamination=0.02),
    )
    splits = {name: dirty_frame(1200, seed) for seed, name in enumerate(SPLITS)}
    single = clean_frames(splits, schema, rules, tmp_path / "single")
    double = clean_frames(splits, schema, rules, tmp_path / "double", num_proc=2)
    assert single[0].counts == double[0].counts
    assert single[0].imputed == double[0].imputed
    assert all(single[0].counts[name]["duplicate"] > 0 for name in SPLITS)
    for name in SPLITS:
        pd.testing.assert_frame_equal(single[1][name], double[1][name])
    pd.testing.assert_frame_equal(single[2], double[2])
    assert len(single[2]) == single[0].quarantined


def test_clean_matches_pandas_duplicated_and_survives_a_hash_collision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Duplicates are found by a 64-bit hash of the key, then the rows sharing a hash are
    compared exactly: with every hash equal, only true repeats are removed."""
    import pipelines.modalities.tabular.cleaning

    frame = dirty_frame(300, 7)
    schema = SchemaConfig(label="y", numeric=["amount", "age"], categorical=["kind"])
    rules = CleanConfig(missing=MissingConfig(numeric="median", categorical="most_frequent"))
    splits = {"train": frame, "val": frame.iloc[:50], "test": frame.iloc[:50]}
    honest, *_ = clean_frames(splits, schema, rules, tmp_path / "honest")
    real_hash = pd.util.hash_pandas_object
    monkeypatch.setattr(
        pipelines.modalities.tabular.cleaning.pd.util,
        "hash_pandas_object",
        lambda frame, index: real_hash(frame, index=index) * 0,
    )
    colliding, *_ = clean_frames(splits, schema, rules, tmp_path / "colliding")
    expected = frame[frame[LABEL].notna()].duplicated(keep="first").sum()
    assert honest.counts["train"]["duplicate"] == colliding.counts["train"]["duplicate"]
    assert honest.counts["train"]["duplicate"] == expected


def test_clean_rejects_a_rule_on_an_undeclared_column(tmp_path: Path) -> None:
    schema = SchemaConfig(label="y", numeric=["amount"])
    frame = pd.DataFrame({"amount": [1.0], LABEL: [0.0]})
    rules = CleanConfig(ranges={"amout": RangeRule(min=0.0)})
    with pytest.raises(PipelineError, match="data.clean.ranges.amout"):
        clean_frames({"train": frame, "val": frame, "test": frame}, schema, rules, tmp_path)


def test_augment_oversamples_only_the_train_split(cfg: PipelineConfig, layout: Layout) -> None:
    metrics = read(layout.augment_metrics)
    target = cfg.data.augment.sampling_strategy
    assert metrics["positive_fraction_after"] == pytest.approx(target / (1 + target), rel=0.02)
    assert metrics["rows_after"] > metrics["rows_before"]
    assert not (layout.augmented_train.parent / "val.arrow").exists()


def test_train_writes_a_weights_only_checkpoint_and_curves(layout: Layout) -> None:
    payload = torch.load(layout.checkpoint, weights_only=True)
    assert payload["hyper_parameters"]["model"]["name"] == "moe_mlp"
    metrics = read(layout.train_metrics)
    assert 0 < metrics["val"]["auprc"] <= 1 and 0.5 < metrics["val"]["auroc"] <= 1
    history = pd.read_csv(layout.train_history)
    assert len(history) == metrics["epochs_run"] and "val_auprc" in history


# every variant export.select.variant may name (the schema's list) is one quantize writes
VARIANTS = set(schema_variants)


def test_quantize_writes_smaller_int8_models(layout: Layout) -> None:
    sizes = read(layout.quantize_metrics)["size_bytes"]
    assert set(sizes) == VARIANTS
    assert sizes["int8_dynamic"] < 0.5 * sizes["fp32"]
    assert sizes["fp16"] < 0.75 * sizes["fp32"]


def test_quantize_builds_each_declared_compressed_model_with_its_own_checkpoint(
    cfg: PipelineConfig, layout: Layout
) -> None:
    trained = load_checkpoint(layout.checkpoint)
    pruned = load_checkpoint(layout.onnx_dir / "pruned.ckpt")
    student = load_checkpoint(layout.onnx_dir / "student.ckpt")
    assert pruned.model_cfg.ffn_dim < trained.model_cfg.ffn_dim
    assert pruned.model_cfg.num_experts == trained.model_cfg.num_experts
    assert not student.model_cfg.is_moe
    assert student.model_cfg.hidden_dim == cfg.quantize.distill.student.hidden_dim
    compression = read(layout.quantize_metrics)["compression"]
    assert (
        compression["student"]["student_parameters"]["total"]
        < compression["pruned"]["parameters"]["total"]
        < compression["trained_parameters"]["total"]
    )
    steps = compression["pruned"]["steps"]
    assert [round(s["removed_share"], 6) for s in steps] == [0.2, 0.4, 0.6]
    qat_ops = {
        n.op_type for n in onnx.load(str(layout.onnx_dir / "model_qat_int8.onnx")).graph.node
    }
    assert {"QuantizeLinear", "DequantizeLinear"} <= qat_ops


def test_the_fp16_graph_holds_float16_weights_and_scores_like_fp32(
    cfg: PipelineConfig, layout: Layout
) -> None:
    graph = onnx.load(str(layout.onnx_dir / "model_fp16.onnx")).graph
    weights = [t for t in graph.initializer if t.data_type == onnx.TensorProto.FLOAT16]
    big = [t for t in graph.initializer if np.prod(t.dims) >= 64]
    assert big and all(t.data_type == onnx.TensorProto.FLOAT16 for t in big)
    assert len(weights) >= len(big)
    # callers see no change: float32 in, float32 out
    for value in (*graph.input, *graph.output):
        assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    features = read(layout.features_file)["features"]
    x, _ = model_inputs(cfg, layout, features, ("test",))["test"]
    scores = {
        name: session(layout.onnx_dir / f"model_{name}.onnx").run(None, {INPUT: x})[0]
        for name in ("fp32", "fp16")
    }
    assert scores["fp16"].dtype == np.float32
    assert np.abs(scores["fp16"] - scores["fp32"]).max() < 1e-2
    variants = read(layout.evaluate_metrics)["variants"]
    assert variants["onnx_fp16"]["auprc"] == pytest.approx(variants["onnx_fp32"]["auprc"], abs=2e-3)


def test_evaluate_compares_every_variant_on_the_test_split(layout: Layout) -> None:
    report = read(layout.evaluate_metrics)
    variants = report["variants"]
    assert set(variants) == {
        "pytorch_fp32",
        *(f"onnx_{name}" for name in VARIANTS),
        "sklearn_logistic_regression",
        "sklearn_hist_gradient_boosting",
    }
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
    # speed-ups against ONNX Runtime FP32 at each batch size, PyTorch eager as a second column
    assert latency["onnx_fp32"]["speedup_vs_onnx_fp32"] == {"batch1": 1.0, "batch256": 1.0}
    pruned, fp32, eager = latency["onnx_pruned"], latency["onnx_fp32"], latency["pytorch_fp32"]
    for batch in ("batch1", "batch256"):
        ratio = fp32[batch]["p50_ms"] / pruned[batch]["p50_ms"]
        assert pruned["speedup_vs_onnx_fp32"][batch] == pytest.approx(ratio)
        ratio = eager[batch]["p50_ms"] / pruned[batch]["p50_ms"]
        assert pruned["speedup_vs_pytorch_fp32"][batch] == pytest.approx(ratio)
    for name, timing in latency.items():
        assert set(timing["speedup_vs_pytorch_fp32"]) == {"batch1", "batch256"}
        assert timing["batch1"]["p99_ms"] >= timing["batch1"]["p50_ms"] > 0
        if name.startswith("onnx_"):
            assert timing["session_memory"]["peak_bytes"] > 0
    assert variants["onnx_pruned"]["parameters"] < variants["onnx_fp32"]["parameters"]
    assert variants["onnx_fp32"]["parameters"] == variants["pytorch_fp32"]["parameters"]
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
    assert (layout.latency_report / "pareto.png").stat().st_size > 10_000


def test_baselines_train_on_the_model_split_and_use_their_validation_threshold(
    cfg: PipelineConfig, layout: Layout
) -> None:
    report = read(layout.evaluate_metrics)
    latency = read(layout.latency_report / "latency.json")["variants"]
    features = read(layout.features_file)["features"]
    data = model_inputs(cfg, layout, features, ("train", "val", "test"))
    for kind in cfg.evaluate.baselines:
        name = f"sklearn_{kind}"
        metrics = report["variants"][name]
        assert 0.5 < metrics["auroc"] <= 1 and 0 < metrics["auprc"] <= 1
        assert metrics["size_bytes"] > 0 and metrics["auprc_retained_vs_fp32"] > 0
        assert {"batch1", "batch256"} <= set(latency[name])
        # measured as it would ship: its ONNX graph, which scores like scikit-learn
        parity = report["baselines"][name]["parity_max_abs_diff_vs_sklearn"]
        assert set(parity) == {"1", "7", "256"} and max(parity.values()) < 1e-5
        assert (layout.baselines_onnx_dir / f"model_{name}.onnx").stat().st_size == (
            metrics["size_bytes"]
        )
        # seeded: the same fit again gives the same scores, and its threshold is the one the
        # declared rule picks on val
        predict = baselines.predictor(baselines.fit(kind, *data["train"], seed=cfg.seed, threads=1))
        x_val, y_val = data["val"]
        threshold = choose_threshold(y_val, predict_all(predict, x_val), cfg.evaluate.threshold)
        assert metrics["threshold"] == pytest.approx(threshold, abs=1e-6)
        x_test, y_test = data["test"]
        expected = classification_metrics(
            y_test, predict_all(predict, x_test), cfg.evaluate.target_fpr, threshold
        )
        assert {k: metrics[k] for k in expected} == pytest.approx(expected, abs=1e-6)


def test_a_baseline_reads_the_current_transaction_of_a_history() -> None:
    histories = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)  # 3 features + flag
    assert baselines.flat_features(histories).tolist() == [[8, 9, 10], [20, 21, 22]]
    rows = np.ones((5, 3), dtype=np.float32)
    assert baselines.flat_features(rows) is rows


def test_the_pareto_front_keeps_what_nothing_beats_on_both_latency_and_metric() -> None:
    points = {"fast": (1.0, 0.70), "best": (5.0, 0.80), "dominated": (6.0, 0.75), "tie": (1.0, 0.7)}
    assert pareto_front(points) == ["fast", "tie", "best"]


def test_export_verifies_parity_and_hashes_its_artifacts(layout: Layout) -> None:
    card = read(layout.export_dir / "model_card.json")
    assert set(card["parity_max_abs_diff"]) == {"1", "7", "256"}
    assert max(card["parity_max_abs_diff"].values()) <= 1e-4
    digest = hashlib.sha256((layout.export_dir / "model.onnx").read_bytes()).hexdigest()
    assert card["sha256"]["model.onnx"] == digest
    if not torch.cuda.is_available():
        assert card["tensorrt"].startswith("skipped:")
    assert "# Model card" in (layout.export_dir / "model_card.md").read_text()


def test_a_model_without_feed_forward_blocks_skips_pruning_and_builds_the_rest(
    layout: Layout, tmp_path: Path
) -> None:
    root = tmp_path / "run"
    shutil.copytree(layout.root / "data", root / "data")
    copy = Layout(root)
    overrides = ["trainer.max_epochs=1", "quantize.distill.epochs=1", "data.source.rows=6000"]
    cfg = load_params(small_params(tmp_path / "params.yaml", overrides, ["model=bilstm_attention"]))
    train.run(cfg, copy)
    metrics = quantize.run(cfg, copy)
    assert metrics["compression"]["pruned"] == {
        "skipped": "skipped: bilstm_attention has no feed-forward blocks to prune"
    }
    assert set(metrics["size_bytes"]) == VARIANTS - {"pruned", "pruned_int8_dynamic"}
    assert load_checkpoint(copy.onnx_dir / "student.ckpt").model_cfg.name == "bilstm_attention"
    ship_pruned = load_params(
        small_params(
            tmp_path / "ship.yaml",
            ["export.select.rule=variant", "export.select.variant=pruned"],
            ["model=bilstm_attention"],
        )
    )
    with pytest.raises(PipelineError, match=r"'pruned': quantize did not build it \(skipped: bil"):
        tabular_export.choose(ship_pruned, copy, {"variants": {}}, None)


def test_a_shipped_compressed_variant_is_checked_against_its_own_pytorch_model(
    layout: Layout, tmp_path: Path
) -> None:
    root = tmp_path / "run"
    shutil.copytree(layout.root, root, ignore=shutil.ignore_patterns("export", "outputs"))
    copy = Layout(root)
    cfg = load_params(
        small_params(
            tmp_path / "params.yaml", ["export.select.rule=variant", "export.select.variant=pruned"]
        )
    )
    card = export.run(cfg, copy)
    assert card["variant"] == "pruned"
    assert card["source_checkpoint"] == str(copy.onnx_dir / "pruned.ckpt")
    # an exact export of the pruned model, so the FP32 tolerance holds
    assert max(card["parity_max_abs_diff"].values()) <= cfg.export.parity_atol
    assert "pruned.ckpt" in card["sha256"]


def test_export_ships_the_validation_threshold_in_the_card_and_the_onnx_metadata(
    layout: Layout,
) -> None:
    card = read(layout.export_dir / "model_card.json")
    evaluation = read(layout.evaluate_metrics)
    # the shipped candidate's own threshold (rule best may ship any of them)
    threshold = evaluation["variants"][report_row(card["variant"])]["threshold"]
    assert card["decision_threshold"] == threshold and 0 < threshold < 1
    assert card["threshold_rule"] == "max_f1"
    props = {
        p.key: p.value for p in onnx.load(str(layout.export_dir / "model.onnx")).metadata_props
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
    assert tabular_export.config_sha256(changed) != tabular_export.config_sha256(base)


@pytest.mark.parametrize(
    "override",
    ["callbacks.checkpoint.resume=false", "logger.csv=false", "evaluate.threshold.rule=fixed"],
)
def test_the_model_version_ignores_settings_that_do_not_change_the_model(override: str) -> None:
    base = load_params(REPO / "params.yaml")
    assert tabular_export.config_sha256(load_params(REPO / "params.yaml", [override])) == (
        tabular_export.config_sha256(base)
    )


def test_dvc_reruns_export_when_any_setting_its_model_version_digests_changes() -> None:
    stage = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["export"]
    assert {*tabular_export.MODEL_CONFIG_GROUPS, "seed"} <= set(stage["params"])


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
    assert tabular_export._label_map(credit_layout) == {"1": "bad", "0": "good"}


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
    inputs = (layout.checkpoint, layout.features_file, layout.augmented_train)
    for path in (*inputs, layout.split(layout.cleaned, "val")):
        dest = tmp_path / path.relative_to(layout.root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(path.read_bytes())

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(tabular_quantize, "static_int8", interrupted)
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


def evaluated(**kept: float) -> dict[str, dict]:
    """An evaluate report's variants with these AUPRC-kept fractions (ONNX ones by file name),
    and a baseline that keeps more than any of them."""
    variants = {f"onnx_{name}": {"auprc_retained_vs_fp32": k} for name, k in kept.items()}
    return {**variants, "sklearn_logistic_regression": {"auprc_retained_vs_fp32": 1.2}}


SPEED = {"fp32": 1.0, "int8_dynamic": 0.8, "int8_static": 0.6, "fp16": 3.0}


def test_the_fastest_rule_ships_the_fastest_variant_that_keeps_enough_auprc() -> None:
    rule = SelectConfig(rule="fastest", min_auprc_kept=0.99, batch_size=256)
    variants = evaluated(fp32=1.0, int8_dynamic=1.0002, int8_static=0.985, fp16=1.0)
    timed: list[str] = []

    def timing(name: str) -> float:
        timed.append(name)
        return SPEED[name]

    chosen = select_variant(rule, variants, set(SPEED), timing)
    # int8_static is faster but keeps 98.5% < 99%; the baseline is never a candidate
    assert chosen.variant == "int8_dynamic"
    assert sorted(timed) == ["fp16", "fp32", "int8_dynamic"]  # only qualifying ones are timed
    assert "batch 256" in chosen.rule and "99.00%" in chosen.rule
    assert "int8_static 98.50%" in chosen.reason
    assert chosen.latency_ms == {"fp16": 3.0, "fp32": 1.0, "int8_dynamic": 0.8}
    # a stricter floor leaves only the exact models
    strict = SelectConfig(rule="fastest", min_auprc_kept=1.0)
    assert select_variant(strict, variants, set(SPEED), SPEED.get).variant == "int8_dynamic"
    no_int8 = evaluated(fp32=1.0, int8_dynamic=0.9, int8_static=0.9, fp16=1.0)
    assert select_variant(strict, no_int8, set(SPEED), SPEED.get).variant == "fp32"


def test_the_best_rule_ships_the_highest_validation_auprc_whatever_its_kind() -> None:
    rule = SelectConfig(rule="best")
    variants = {
        "pytorch_fp32": {"val_auprc": 0.99, "size_bytes": 1},  # not a candidate: not shipped
        "onnx_fp32": {"val_auprc": 0.80, "size_bytes": 500},
        "onnx_int8_dynamic": {"val_auprc": 0.81, "size_bytes": 200},
        # the test AUPRC does not count: the choice is made on validation
        "onnx_pruned": {"val_auprc": 0.70, "auprc": 0.99, "size_bytes": 100},
        "sklearn_hist_gradient_boosting": {"val_auprc": 0.85, "size_bytes": 900},
    }
    candidates = {"fp32", "int8_dynamic", "pruned", "sklearn_hist_gradient_boosting"}
    chosen = select_variant(rule, variants, candidates, SPEED.get)
    assert chosen.variant == "sklearn_hist_gradient_boosting"
    assert "validation AUPRC" in chosen.rule
    assert chosen.reason.startswith("sklearn_hist_gradient_boosting: validation AUPRC")
    assert "int8_dynamic 0.8100" in chosen.reason
    # without the baseline among the candidates, the best model variant; a tie: the smaller
    tied = {**variants, "onnx_fp32": {"val_auprc": 0.81, "size_bytes": 500}}
    chosen = select_variant(rule, tied, candidates - {"sklearn_hist_gradient_boosting"}, SPEED.get)
    assert chosen.variant == "int8_dynamic"


def test_the_best_rule_ranks_multiclass_variants_by_validation_macro_f1(tmp_path: Path) -> None:
    cfg = load_params(small_params(tmp_path / "params.yaml", ["export.select.rule=best"]))
    evaluation = {
        "variants": {
            "onnx_fp32": {"val_macro_f1": 0.90, "macro_f1": 0.99, "size_bytes": 900},
            "onnx_int8_dynamic": {"val_macro_f1": 0.92, "macro_f1": 0.80, "size_bytes": 300},
            "onnx_int8_static": {"val_macro_f1": 0.92, "macro_f1": 0.81, "size_bytes": 250},
        }
    }
    available = ["fp32", "int8_dynamic", "int8_static"]
    chosen, reason = select_multiclass_variant(
        cfg, evaluation, available, tmp_path / "none", "text"
    )
    # validation decides, never test; the tie goes to the smaller file
    assert chosen == "int8_static"
    assert reason.startswith("highest validation macro-F1") and "fp32 0.9000" in reason
    with pytest.raises(PipelineError, match="has no val_macro_f1; rerun evaluate"):
        select_multiclass_variant(cfg, {"variants": {}}, available, tmp_path / "none", "text")


def test_the_policy_refuses_in_one_line_naming_the_rule_when_nothing_qualifies() -> None:
    rule = SelectConfig(rule="fastest", min_auprc_kept=0.999, batch_size=64)
    variants = evaluated(fp32=0.99, int8_dynamic=0.97)
    with pytest.raises(PipelineError) as err:
        select_variant(rule, variants, {"fp32", "int8_dynamic"}, SPEED.get)
    message = str(err.value)
    assert len(message.splitlines()) == 1
    assert "export.select: the fastest ONNX variant at batch 64" in message
    assert "99.90%" in message and "no variant qualifies" in message and "(fp32)" in message
    missing = SelectConfig(rule="variant", variant="fp16")
    with pytest.raises(PipelineError, match="named variant 'fp16': no such ONNX variant"):
        select_variant(missing, variants, {"fp32", "int8_dynamic"}, SPEED.get)


def test_export_applies_the_declared_policy_and_writes_the_reason_in_the_card(
    layout: Layout, tmp_path: Path
) -> None:
    # the default rule: the highest validation AUPRC of every candidate, baselines included
    best = read(layout.export_dir / "model_card.json")
    report = read(layout.evaluate_metrics)["variants"]
    candidates = {
        name: m["val_auprc"] for name, m in report.items() if name.startswith(("onnx_", "sklearn_"))
    }
    assert report_row(best["variant"]) == max(candidates, key=candidates.get)
    assert best["selection"]["reason"].startswith(f"{best['variant']}: validation AUPRC")
    root = tmp_path / "run"
    shutil.copytree(layout.root, root, ignore=shutil.ignore_patterns("export", "outputs"))
    copy = Layout(root)
    fastest = ["export.select.rule=fastest", "export.select.repeats=3"]
    cfg = load_params(small_params(tmp_path / "params.yaml", fastest))
    card = export.run(cfg, copy)
    kept = read(copy.evaluate_metrics)["variants"]
    assert kept[f"onnx_{card['variant']}"]["auprc_retained_vs_fp32"] >= 0.99
    latency = card["selection"]["latency_ms"]
    assert card["variant"] == min(latency, key=latency.get)
    assert card["selection"]["reason"].startswith(f"{card['variant']}: ")
    assert "chosen by export.select: the fastest" in (copy.export_dir / "model_card.md").read_text()
    # nothing keeps 100%: export fails naming the rule, and publishes nothing new
    report = read(copy.evaluate_metrics)
    for metrics in report["variants"].values():
        metrics["auprc_retained_vs_fp32"] = 0.5
    copy.evaluate_metrics.write_text(json.dumps(report))
    strict = load_params(
        small_params(tmp_path / "strict.yaml", [*fastest, "export.select.min_auprc_kept=1"])
    )
    with pytest.raises(PipelineError, match="no variant qualifies"):
        export.run(strict, copy)
    assert read(copy.export_dir / "model_card.json") == card


def test_each_stage_records_its_wall_time_outside_dvc_and_the_summary_prints_it(
    layout: Layout, capsys: pytest.CaptureFixture[str]
) -> None:
    times = stage_times.read(layout, STAGES)
    assert list(times) == list(STAGES) and all(seconds > 0 for seconds in times.values())
    print_summary(layout)
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.startswith("wall time per stage (its last run): ingest ")
    assert all(f"{stage} " in line for stage in STAGES) and "; total " in line
    # a time differs on every run: no DVC output or metric may hold it (dvc.lock would change
    # on every `dvc repro`), and git ignores it
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"].values()
    declared = [
        next(iter(out)) if isinstance(out, dict) else out
        for stage in stages
        for kind in ("outs", "metrics", "plots")
        for out in stage.get(kind, [])
    ]
    relative = layout.stage_times.relative_to(layout.root).as_posix()
    assert not [p for p in declared if relative.startswith(p.rstrip("/")) or p.startswith(relative)]
    ignored = subprocess.run(["git", "check-ignore", "-q", relative], cwd=REPO, check=False)
    assert ignored.returncode == 0


def test_a_failed_stage_records_no_wall_time(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    with pytest.raises(PipelineError), stage_times.timed(layout, "clean"):
        raise PipelineError("a gate failed")
    with stage_times.timed(layout, "ingest"):
        pass
    assert list(stage_times.read(layout, STAGES)) == ["ingest"]


def test_the_export_folder_ships_test_rows_of_both_classes_as_examples(
    cfg: PipelineConfig, layout: Layout
) -> None:
    examples = read(layout.export_dir / "examples" / "inputs.json")
    features = read(layout.features_file)["features"]
    x, y = model_inputs(cfg, layout, features, ("test",))["test"]
    assert examples["features"] == features and examples["input_name"] == INPUT
    inputs = np.asarray(examples["inputs"], dtype=np.float32)
    # rows of the test split as the graph takes them, of both classes
    rows = [int(np.flatnonzero((x == row).all(axis=tuple(range(1, x.ndim))))[0]) for row in inputs]
    assert len(rows) == 3 and {int(y[r]) for r in rows} == {0, 1}
    label_map = read(layout.export_dir / "model_card.json")["label_map"]
    assert examples["labels"] == [label_map[str(int(y[r]))] for r in rows]
    scores = session(layout.export_dir / "model.onnx").run(None, {INPUT: inputs})[0]
    assert scores.shape == (3,) and ((scores >= 0) & (scores <= 1)).all()
