"""The tabular export stage: the candidate `export.select` chooses (a variant of the model or a
scikit-learn baseline), as ONNX, verified against its source (PyTorch at several batch sizes;
scikit-learn for a baseline), a TensorRT engine where a GPU and TensorRT exist, and a model
card that says what shipped and why."""

from __future__ import annotations

import hashlib
import json
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any

from pipelines.compression import variants as variants_of
from pipelines.config import PipelineConfig, to_container
from pipelines.datamodule import model_inputs
from pipelines.drift_reference import write_reference_profile
from pipelines.errors import PipelineError
from pipelines.evaluation import latency
from pipelines.io import read_json, staged_outputs, write_json
from pipelines.layout import Layout
from pipelines.onnx_export import INPUT, OUTPUT, check_parity, embed_metadata, parity_check
from pipelines.runtime import session
from pipelines.selection import BASELINE_PREFIX, Selection, report_row, select_variant
from pipelines.tensorrt_engine import availability, build_fp16_engine
from pipelines.training import load_checkpoint


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    ex = cfg.export
    features = read_json(layout.features_file)["features"]
    x, _ = model_inputs(cfg, layout, features, ("test",))["test"]
    evaluation = read_json(layout.evaluate_metrics)
    selection = choose(cfg, layout, evaluation, x)
    variant = selection.variant
    print(f"export: {variant} ({selection.reason})")
    source = candidate_file(layout, variant)
    if variant.startswith(BASELINE_PREFIX):
        # checked by evaluate against scikit-learn's own probabilities on the test rows
        source_checkpoint, atol = None, ex.parity_atol
        parity = evaluation["baselines"][variant]["parity_max_abs_diff_vs_sklearn"]
        check_parity(source, parity, atol, f"scikit-learn (measured by {layout.evaluate_metrics})")
        parity_against = "scikit-learn predict_proba per batch size (measured by evaluate)"
    else:
        # against the PyTorch model the variant was made from (a pruned or distilled model's)
        source_checkpoint = variants_of.checkpoint(layout.onnx_dir, layout.checkpoint, variant)
        module = load_checkpoint(source_checkpoint)
        atol = ex.parity_atol if variants_of.is_exact_export(variant) else ex.quantized_atol
        parity = parity_check(module.model, source, x, list(ex.parity_batch_sizes), atol)
        parity_against = "PyTorch, per batch size"
    test_metrics = evaluation["variants"].get(report_row(variant), {})
    config = model_config(cfg)
    config_hash = config_sha256(cfg)
    version = f"{cfg.data.name}-{cfg.model.name}-{variant}-{config_hash[:12]}"
    label_map = _label_map(layout)
    threshold = test_metrics.get("threshold")

    with staged_outputs(layout.staging, layout.export_dir) as (folder,):
        folder.mkdir()
        model_path = folder / "model.onnx"
        shutil.copyfile(source, model_path)
        # what a consumer of model.onnx alone needs, readable with onnx or ORT's modelmeta
        embed_metadata(
            model_path,
            {
                "features": json.dumps(features),
                "label_map": json.dumps(label_map),
                "decision_threshold": json.dumps(threshold),
                "threshold_rule": evaluation.get("threshold_rule", "fixed"),
                "config_sha256": config_hash,
                "model_version": version,
                "producer_version": _package_version(),
            },
        )
        tensorrt = (
            "skipped: a scikit-learn graph (ai.onnx.ml operators) has no TensorRT path"
            if source_checkpoint is None
            else _tensorrt(
                ex.tensorrt, model_path, folder / "model_fp16.plan", max(ex.parity_batch_sizes)
            )
        )
        print(f"tensorrt: {tensorrt}")
        card = {
            # a shipped baseline is not the configured network: the card names what ships
            "model": variant if source_checkpoint is None else cfg.model.name,
            "variant": variant,
            "selection": {
                "rule": selection.rule,
                "reason": selection.reason,
                "latency_ms": selection.latency_ms,
            },
            "version": version,
            "decision_threshold": threshold,
            "threshold_rule": evaluation.get("threshold_rule", "fixed"),
            "label_map": label_map,
            "inputs": {
                "name": INPUT,
                "dtype": "float32",
                "shape": ["batch", *x.shape[1:]],
                "features": features,
            },
            "outputs": {
                "name": OUTPUT,
                "dtype": "float32",
                "shape": ["batch"],
                "meaning": "probability of the positive class",
            },
            "positive_class": cfg.data.schema.positive_class,
            "label_column": cfg.data.schema.label,
            "parity_max_abs_diff": parity,
            "parity_against": parity_against,
            "parity_atol": atol,
            "test_metrics": test_metrics,
            "test_metrics_reliable": evaluation.get("reliable", True),
            "tensorrt": tensorrt,
            "sha256": {
                p.name: _sha256(p)
                for p in dict.fromkeys(
                    [
                        model_path,
                        *([layout.checkpoint, source_checkpoint] if source_checkpoint else []),
                        *sorted(folder.glob("*.plan")),
                    ]
                )
            },
            # the checkpoint the shipped graph was exported from (a compressed model's own);
            # a baseline's: none (fitted by evaluate on the train split, seeded)
            "source_checkpoint": str(source_checkpoint) if source_checkpoint else None,
            "config": config,
            "config_sha256": config_hash,
            "seed": cfg.seed,
        }
        write_json(folder / "model_card.json", card)
        # the server measures input drift against this (train split, the model's features)
        write_reference_profile(folder, layout.split(layout.cleaned, "train"), features)
        (folder / "model_card.md").write_text(_markdown(card))
    return card


def choose(cfg: PipelineConfig, layout: Layout, evaluation: dict[str, Any], x) -> Selection:
    """Apply export.select to the ONNX files quantize wrote and the evaluate report; a rule on
    speed times the candidates here, on the test rows (a declared input), not from evaluate's
    latency file (which lives outside DVC's outputs)."""
    select = cfg.export.select
    available = {
        p.stem.removeprefix("model_")
        for folder in (layout.onnx_dir, layout.baselines_onnx_dir)
        for p in folder.glob("model_*.onnx")
    }

    def time_variant(name: str) -> float:
        sess = session(candidate_file(layout, name), threads=select.threads)
        timing = latency(
            lambda batch: sess.run(None, {INPUT: batch})[0],
            x,
            [select.batch_size],
            select.repeats,
        )
        return timing[f"batch{select.batch_size}"]["p50_ms"]

    skipped = read_json(layout.quantize_metrics).get("compression", {})
    source = variants_of.source(select.variant)
    if select.rule == "variant" and select.variant not in available and source in skipped:
        reason = skipped[source].get("skipped")
        if reason:
            raise PipelineError(
                f"export.select.variant = {select.variant!r}: quantize did not build it ({reason})"
            )
    return select_variant(select, evaluation["variants"], available, time_variant)


def candidate_file(layout: Layout, candidate: str) -> Path:
    """The ONNX file of an export candidate: a model variant quantize wrote, or a baseline
    evaluate converted."""
    folder = layout.baselines_onnx_dir if candidate.startswith(BASELINE_PREFIX) else layout.onnx_dir
    return folder / f"model_{candidate}.onnx"


# every config group that shapes the exported model: the data and its preparation, the
# architecture, how it was trained (optimiser and loss in train; epochs, precision, clipping in
# trainer; the distribution strategy; early stopping and checkpoint selection in callbacks) and
# how it was quantized. Not logger (where metrics go), evaluate or export (what is reported
# and shipped, not what the model is).
MODEL_CONFIG_GROUPS = ("data", "model", "train", "trainer", "strategy", "callbacks", "quantize")


def model_config(cfg: PipelineConfig) -> dict[str, Any]:
    """The config the model card records and `config_sha256` digests."""
    config = {k: to_container(getattr(cfg, k)) for k in MODEL_CONFIG_GROUPS}
    # whether a rerun resumes a killed one is a choice about the run, not what it produced
    # (pipelines.training.run_fingerprint leaves it out for the same reason)
    del config["callbacks"]["checkpoint"]["resume"]
    return config


def config_sha256(cfg: PipelineConfig) -> str:
    return hashlib.sha256(
        json.dumps({**model_config(cfg), "seed": cfg.seed}, sort_keys=True).encode()
    ).hexdigest()


def _label_map(layout: Layout) -> dict[str, str]:
    """Model output class (1 above the threshold, 0 below) -> the label value the source table
    has for it, as ingest observed them."""
    classes = read_json(layout.schema_file).get("label_classes") or {}
    if not classes.get("negative"):
        raise PipelineError(
            f"{layout.schema_file}: key 'label_classes.negative' missing (ingest writes the "
            "label's observed values): rerun the ingest stage"
        )
    return {"1": classes["positive"], "0": classes["negative"]}


def _tensorrt(setting: str, onnx_path: Path, engine_path: Path, max_batch: int) -> str:
    if setting == "off":
        return "skipped: export.tensorrt=off"
    reason = availability()
    if reason:
        return f"skipped: {reason}"
    build_fp16_engine(onnx_path, engine_path, max_batch)
    return f"built {engine_path.name} (FP16)"


def _package_version() -> str:
    try:
        return f"moe-pipelines {metadata.version('moe-pipelines')}"
    except metadata.PackageNotFoundError:
        return "moe-pipelines (not installed)"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _markdown(card: dict[str, Any]) -> str:
    metrics = "\n".join(
        f"| {k} | {v:.4f} |" for k, v in card["test_metrics"].items() if isinstance(v, float)
    )
    hashes = "\n".join(f"| {name} | `{digest}` |" for name, digest in card["sha256"].items())
    return f"""# Model card: {card["model"]} ({card["variant"]})

Input `{card["inputs"]["name"]}`: float32 `[batch, {len(card["inputs"]["features"])}]`, raw
(un-standardised) features in this order: {", ".join(card["inputs"]["features"])}.

Output `{card["outputs"]["name"]}`: float32 `[batch]`, probability that `{card["label_column"]}` is
`{card["positive_class"]}`. Decision: positive when the probability is >=
{card["decision_threshold"]} (chosen on the validation split by rule `{card["threshold_rule"]}`).
Version `{card["version"]}`.

Variant `{card["variant"]}`, chosen by {card["selection"]["rule"]}: {card["selection"]["reason"]}.

## Test metrics
| metric | value |
| --- | --- |
{metrics}

## Verification
ONNX vs {card["parity_against"]}, max abs difference: {json.dumps(card["parity_max_abs_diff"])}
(tolerance {card["parity_atol"]}). TensorRT: {card["tensorrt"]}.

## Artifacts
| file | sha256 |
| --- | --- |
{hashes}

## Config
```json
{json.dumps(card["config"], indent=2)}
```
"""
