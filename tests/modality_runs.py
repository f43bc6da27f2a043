"""What the end-to-end tests of every modality share: its experiment composed and shrunk, the
eight stages run in process, the checks every modality must pass alike (quarantine agrees with
the metrics, same seed same bytes, a failing stage leaves nothing behind), and `train.py`
runs (single and sweep) as a user types them."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from pipelines.compose import compose_params
from pipelines.config import PipelineConfig, load_params
from pipelines.errors import PipelineError
from pipelines.layout import SPLITS, Layout
from tests.small import REPO, env

STAGES = ("ingest", "profile", "clean", "augment", "train", "quantize", "evaluate", "export")
DATA_STAGES = ("ingest", "profile", "clean", "augment", "train")
# every modality's small run: one epoch (an experiment's own 6 or 8 epochs on the small data
# made each train.py or sweep test take minutes), no W&B, few latency repeats
SHARED_SMALL = ["trainer.max_epochs=1", "logger.wandb.enabled=false", "evaluate.latency_repeats=2"]
# a multi-class fit of a few epochs, kept by validation macro-F1, every epoch run
MULTICLASS_FIT = [
    "train.lr=0.003",
    "train.batch_size=32",
    "trainer.max_epochs=4",
    "callbacks.checkpoint.monitor=val/macro_f1",
    "callbacks.early_stopping.enabled=false",
    "logger.wandb.enabled=false",
]
# each experiment shrunk: 1,500 tickets / 600 images at 32x32 / 150 series, small models
SMALL_TEXT = [
    "data.source.rows=1500",
    "data.text.profile.language_sample=150",
    "data.text.profile.gates.min_rows=100",
    "data.text.profile.gates.min_class_rows=5",
    "data.text.tokenizer.vocab_size=500",
    "data.text.tokenizer.max_length=48",
    "model.seq_len=48",
    "model.hidden_dim=32",
    "model.ffn_dim=48",
    "model.num_blocks=1",
    "quantize.static.calibration_rows=64",
]
SMALL_IMAGES = [
    "data.source.rows=600",
    "data.image.simulator.height=32",
    "data.image.simulator.width=32",
    "data.image.clean.size.height=32",
    "data.image.clean.size.width=32",
    "data.image.profile.gates.min_rows=50",
    "data.image.profile.gates.min_class_rows=5",
    # 90 val/test images: a handful of split duplicates is a large share
    "data.image.profile.gates.max_leak_rate=0.3",
    "data.image.profile.samples_per_class=4",
    "model.hidden_dim=16",
    "model.ffn_dim=16",
    "quantize.static.calibration_rows=32",
]

# 150 machines of 256 samples, windows of 64, a small CNN
SMALL_SERIES = [
    "data.source.rows=150",
    "data.timeseries.simulator.samples=256",
    "data.timeseries.clean.min_samples=128",
    "data.timeseries.clean.stuck_samples=48",
    "data.timeseries.window.length=64",
    "data.timeseries.window.stride=64",
    "data.timeseries.profile.gates.min_rows=10",
    "data.timeseries.profile.gates.min_class_rows=3",
    # 30 test series: PSI of per-series statistics moves a lot by chance
    "data.timeseries.profile.gates.max_channel_psi=1.0",
    "data.timeseries.profile.gates.max_label_psi=1.0",
    "model.hidden_dim=16",
    "model.ffn_dim=16",
    "quantize.static.calibration_rows=32",
]


def multiclass_fit_config(tmp: Path, composed: str, **model: Any) -> PipelineConfig:
    """`composed` (an experiment or a model group choice) with MULTICLASS_FIT and the model
    keys given: what a test fits a multi-class model with."""
    compose_params(tmp / "params.yaml", [composed])
    keys = [f"model.{name}={value}" for name, value in model.items()]
    return load_params(tmp / "params.yaml", [*keys, *MULTICLASS_FIT])


def small_config(experiment: str, small: list[str], tmp: Path, *extra: str) -> PipelineConfig:
    """`+experiment=<experiment>` composed once into tmp/params.yaml, then shrunk."""
    params = tmp / "params.yaml"
    if not params.exists():
        compose_params(params, [f"+experiment={experiment}"])
    return load_params(params, [*small, *SHARED_SMALL, *extra])


def pipeline_fixture(config: Callable[[Path], PipelineConfig], name: str) -> Any:
    """A module-scoped fixture: the eight stages run once on `config(root)`; (root, results)."""

    @pytest.fixture(scope="module")
    def pipeline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
        root = tmp_path_factory.mktemp(name)
        return root, run_pipeline(config(root), root)

    return pipeline


def run(stage: str, cfg: PipelineConfig, root: Path) -> Any:
    return importlib.import_module(f"stages.{stage}").run(cfg, Layout(root))


def run_pipeline(cfg: PipelineConfig, root: Path) -> dict[str, Any]:
    return {stage: run(stage, cfg, root) for stage in STAGES}


def assert_every_declared_output_exists(root: Path, *also: Path) -> None:
    """Every `outs`/`metrics`/`plots` path of every stage in dvc.yaml exists under `root` (and
    the modality's own files in `also`); no staging leftovers; the ingested folder holds only
    the splits and schema.json (the `datasets` maps leave no cache files in DVC outputs)."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    declared = [
        entry if isinstance(entry, str) else next(iter(entry))
        for stage in stages.values()
        for kind in ("outs", "metrics", "plots")
        for entry in stage.get(kind) or []
    ]
    for path in (*(root / d for d in declared), *also):
        assert path.exists(), path
    layout = Layout(root)
    assert not layout.staging.exists()
    ingested = sorted(p.name for p in layout.ingested.iterdir())
    assert ingested == ["schema.json", *(f"{s}.arrow" for s in sorted(SPLITS))]


def fails(stage: str, cfg: PipelineConfig, root: Path, match: str, output: Path) -> None:
    """The stage stops with one PipelineError matching `match` and writes nothing."""
    with pytest.raises(PipelineError, match=match):
        run(stage, cfg, root)
    assert not output.exists()
    assert not (root / ".staging").exists() or not any((root / ".staging").iterdir())


def assert_quarantine_agrees_with_the_metrics(root: Path, clean: dict[str, Any]) -> None:
    """Every removed row is in quarantine under the rule that removed it; rows add up."""
    quarantine = pd.read_parquet(Layout(root).quarantine)
    assert len(quarantine) == clean["quarantined"] > 0
    by_rule = quarantine["rule"].value_counts().to_dict()
    assert by_rule == {rule: n for rule, n in clean["removed_by_rule"].items() if n}
    for split in SPLITS:
        removed = sum(clean["splits"][split]["removed"].values())
        assert clean["rows_out"][split] + removed == clean["rows_in"][split]


def assert_multiclass_evaluation(
    root: Path, results: dict[str, Any], baselines: set[str], timed: set[str]
) -> dict[str, Any]:
    """evaluate's report: the model, its ONNX copies and `baselines`, each with per-class
    figures and a macro-F1; ONNX FP32 decides as PyTorch does on every test row; the latency
    report times `timed`; quantize's FP32 graph matches PyTorch. Returns the variants."""
    report = results["evaluate"]
    onnx = {"pytorch_fp32", "onnx_fp32", "onnx_int8_dynamic", "onnx_int8_static"}
    assert set(report["variants"]) == onnx | baselines
    for m in report["variants"].values():
        assert set(m["per_class"]) == set(report["classes"])
        assert 0.0 <= m["macro_f1"] <= 1.0
    torch_m, onnx_m = report["variants"]["pytorch_fp32"], report["variants"]["onnx_fp32"]
    assert onnx_m["confusion_matrix"] == torch_m["confusion_matrix"]
    latency = json.loads((Layout(root).latency_report / "latency.json").read_text())["variants"]
    assert {"onnx_fp32", "pytorch_fp32", *timed} <= set(latency)
    assert set(latency["onnx_fp32"]) >= {"batch1", "batch32"}
    assert results["quantize"]["variants"]["fp32"]["max_abs_diff_vs_pytorch"] < 1e-4
    return report["variants"]


def assert_same_seed_same_bytes(
    cfg: PipelineConfig, root: Path, results: dict[str, Any], again: Path
) -> None:
    """The data stages and training rerun in `again`: identical split files, same metrics."""
    for stage in DATA_STAGES:
        rerun = run(stage, cfg, again)
        if stage == "train":
            assert rerun["val"] == results["train"]["val"]
    for name in ("clean/train.arrow", "clean/val.arrow", "clean/test.arrow"):
        assert (again / "data" / name).read_bytes() == (root / "data" / name).read_bytes()
    augmented = Path("data") / "augmented" / "train.arrow"
    assert (again / augmented).read_bytes() == (root / augmented).read_bytes()


def copy_run(root: Path, dest: Path, folders: tuple[str, ...]) -> None:
    for folder in folders:
        shutil.copytree(root / folder, dest / folder)


def train_py(*args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    """`python train.py <args>` from the repository, as a user runs it."""
    return subprocess.run(
        [sys.executable, "train.py", *args],
        cwd=REPO,
        env=env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def train_only(experiment: str, overrides: list[str], run_dir: Path) -> dict[str, Any]:
    """The user's command stopped after train (the later stages have tests of their own), with
    the dense twin given in `overrides`: its train metrics, after checking it printed the
    optimized metric and has no inactive parameters."""
    result = train_py(
        f"+experiment={experiment}",
        *overrides,
        "+pipeline.stages=[ingest,profile,clean,augment,train]",
        f"hydra.run.dir={run_dir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "val/macro_f1 = " in result.stdout
    metrics = json.loads((run_dir / "metrics" / "train.json").read_text())
    assert metrics["parameters"]["total"] == metrics["parameters"]["active_per_row"]
    return metrics


def two_trial_sweep(search: str, overrides: list[str], tmp: Path, data_entries: int) -> list[Any]:
    """`python train.py -m hparams_search=<search>` for two trials on small data: both complete,
    each trial's value is its run's val/macro_f1, and the data cache holds `data_entries`
    entries (1: the second trial reused the first one's data stages). Returns the trials."""
    import optuna

    storage = f"sqlite:///{tmp}/study.db"
    result = train_py(
        "-m",
        f"hparams_search={search}",
        *overrides,
        "hydra.sweeper.n_trials=2",
        f"hydra.sweeper.storage={storage}",
        f"hydra.sweep.dir={tmp / 'sweep'}",
        f"pipeline.data_cache={tmp / 'cache'}",
        timeout=900,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    study = optuna.load_study(study_name=search, storage=storage)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 2
    for n, trial in enumerate(done):
        metrics = json.loads((tmp / "sweep" / str(n) / "metrics" / "train.json").read_text())
        assert metrics["val"]["macro_f1"] == pytest.approx(trial.value)
    assert len([p for p in (tmp / "cache").iterdir() if p.is_dir()]) == data_entries
    return done


def ingest_real_data(experiment: str, data: str, tmp: Path) -> tuple[dict, dict, PipelineConfig]:
    """`data=<data>` under `+experiment=<experiment>` ingested: rows per split, schema.json."""
    params = tmp / "params.yaml"
    compose_params(params, [f"+experiment={experiment}", f"data={data}"])
    cfg = load_params(params, ["logger.wandb.enabled=false"])
    rows = run("ingest", cfg, tmp)
    return rows, json.loads(Layout(tmp).schema_file.read_text()), cfg
