"""`+experiment=machine_monitoring` through the same eight stages as tables, text and images,
on small data: the stages pick the series plug-ins from data.modality, every stage writes the
outputs dvc.yaml declares, every removed series reaches quarantine with its rule, evaluate
reports the MoE beside its INT8 copies and the MiniRocket and catch22 baselines on the same
test windows, and the export folder scores raw windows alone with the train split's
normalisation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.config import PipelineConfig
from pipelines.layout import Layout
from tests.modality_runs import (
    SMALL_SERIES,
    assert_every_declared_output_exists,
    assert_quarantine_agrees_with_the_metrics,
    pipeline_fixture,
    small_config,
)


def series_config(tmp: Path, *extra: str) -> PipelineConfig:
    return small_config("machine_monitoring", SMALL_SERIES, tmp, *extra)


pipeline = pipeline_fixture(series_config, "series")


def test_the_machine_monitoring_experiment_selects_the_timeseries_modality(
    tmp_path: Path,
) -> None:
    cfg = series_config(tmp_path)
    assert cfg.data.modality == "timeseries" and cfg.data.name == "machine_signals"
    assert cfg.model.name == "ts_inception_moe" and cfg.optimized_metric == "val/macro_f1"
    assert list(cfg.data.timeseries.channels) == ["vibration", "current", "temperature"]


def test_every_stage_writes_what_dvc_yaml_declares(pipeline: tuple[Path, dict]) -> None:
    root, _ = pipeline
    layout = Layout(root)
    assert_every_declared_output_exists(
        root,
        *(layout.profile_report / f for f in ("profile.html", "examples.png", "spectrum.png")),
        layout.evaluate_report / "confusion_onnx_int8_static.png",
        layout.pr_curves / "minirocket_ridge.csv",
    )
    schema = json.loads(layout.schema_file.read_text())
    assert schema["classes"] == ["bearing_wear", "healthy", "imbalance", "looseness",
                                 "overheating"]  # fmt: skip
    assert schema["sampling_rate_hz"] == 200.0


def test_series_are_split_whole(pipeline: tuple[Path, dict]) -> None:
    from pipelines.io import read_split

    layout = Layout(Path(pipeline[0]))
    ids = {s: set(read_split(layout.split(layout.ingested, s))["series_id"]) for s in
           ("train", "val", "test")}  # fmt: skip
    assert not ids["train"] & ids["test"] and not ids["train"] & ids["val"]


def test_every_removed_series_is_in_quarantine_with_its_rule(pipeline: tuple[Path, dict]) -> None:
    root, results = pipeline
    clean = results["clean"]
    assert_quarantine_agrees_with_the_metrics(root, clean)
    assert clean["removed_by_rule"]["too_short"] > 0 and clean["spikes_replaced"] > 0
    quarantine = pd.read_parquet(Layout(root).quarantine)
    assert quarantine["reason"].str.len().min() > 0
    assert quarantine["figure"].map(lambda b: b[:4] == b"\x89PNG").all()


def test_evaluate_reports_the_moe_beside_its_int8_copies_and_both_baselines(
    pipeline: tuple[Path, dict],
) -> None:
    root, results = pipeline
    report = results["evaluate"]
    assert set(report["variants"]) == {
        "pytorch_fp32",
        "onnx_fp32",
        "onnx_int8_dynamic",
        "onnx_int8_static",
        "minirocket_ridge",
        "catch22_boosted_trees",
    }
    for m in report["variants"].values():
        assert set(m["per_class"]) == set(report["classes"])
    torch_m, onnx_m = report["variants"]["pytorch_fp32"], report["variants"]["onnx_fp32"]
    assert onnx_m["confusion_matrix"] == torch_m["confusion_matrix"]
    # the simulated faults are separable: real baselines, not chance (5 classes: 0.2)
    assert report["variants"]["minirocket_ridge"]["macro_f1"] > 0.5
    assert report["variants"]["catch22_boosted_trees"]["macro_f1"] > 0.5
    assert results["quantize"]["variants"]["fp32"]["max_abs_diff_vs_pytorch"] < 1e-4
    latency = json.loads((Layout(root).latency_report / "latency.json").read_text())
    assert {"onnx_fp32", "minirocket_ridge", "normalise_only"} <= set(latency["variants"])


def test_the_export_folder_scores_raw_windows_with_the_train_statistics(
    pipeline: tuple[Path, dict],
) -> None:
    from pipelines.modalities.timeseries.export_folder import score_windows

    root, results = pipeline
    folder = Layout(root).export_dir
    card = json.loads((folder / "model_card.json").read_text())
    prep = card["preprocessing"]
    train = results["train"]
    assert prep["mean"] == train["channel_mean"] and prep["std"] == train["channel_std"]
    assert prep["channels"] == ["vibration", "current", "temperature"]
    assert prep["window_length"] == 64 and card["inputs"]["windows"]["shape"][0] == "batch"
    assert results["export"]["folder_vs_variant_max_abs_diff"] <= 1e-5
    # raw readings at the machine's scale, any batch size
    raw = np.stack([np.stack([np.sin(np.arange(64) / 3), np.full(64, 10.0), np.full(64, 45.0)])
                    for _ in range(5)]).astype(np.float32)  # fmt: skip
    scored = score_windows(folder, raw)
    assert len(scored) == 5 and all(abs(sum(s["probabilities"].values()) - 1) < 1e-4
                                    for s in scored)  # fmt: skip
    # examples/: test windows of different classes, which the folder scores
    examples = json.loads((folder / "examples" / "windows.json").read_text())
    windows = np.asarray(examples["windows"], dtype=np.float32)
    assert windows.shape == (3, 3, 64) and len(set(examples["labels"])) == 3
    assert len(score_windows(folder, windows)) == len(windows)
    # what the server's drift gauges compare traffic with: each channel's level and spread
    # over the clean train windows, in the card's units
    reference = json.loads((folder / "reference_profile.json").read_text())
    assert list(reference["features"]) == [
        f"{channel}_{statistic}" for channel in prep["channels"] for statistic in ("mean", "std")
    ]
    assert reference["source"] == "clean/train" and reference["rows"] > 0


def test_the_series_search_space_runs_as_an_optuna_sweep(tmp_path: Path) -> None:
    """`python train.py -m hparams_search=machine_monitoring_optuna`, two trials on small data:
    the searched model keys reach the trials, the second trial reuses the first one's data
    stages, and the study records both values."""
    from tests import modality_runs as runs

    searched = ("model.hidden_dim", "model.ffn_dim")
    overrides = [o for o in SMALL_SERIES if not o.startswith(searched)]
    overrides += ["trainer.max_epochs=1", "logger.wandb.enabled=false"]
    done = runs.two_trial_sweep("machine_monitoring_optuna", overrides, tmp_path, data_entries=1)
    assert {"train.lr", "model.num_experts", "model.hidden_dim", "model.num_blocks"} <= set(
        done[0].params
    )
    for n, trial in enumerate(done):
        card = json.loads((tmp_path / "sweep" / str(n) / "metrics" / "train.json").read_text())
        # the trial's own architecture was trained, not the experiment's default
        assert card["parameters"]["total"] > 0
        assert trial.params["model.hidden_dim"] in (32, 64, 96)
