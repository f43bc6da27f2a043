"""The tabular evaluate stage: every variant (PyTorch FP32, ONNX FP32, INT8, FP16, ...) and the
classical baselines, converted to ONNX as they would ship, on the same test split."""

from __future__ import annotations

import csv
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from pipelines.compression import variants as variants_of
from pipelines.config import PipelineConfig
from pipelines.datamodule import model_inputs
from pipelines.evaluation import (
    classification_metrics,
    curves,
    interleaved_latency,
    predict_all,
    ranking_metrics,
)
from pipelines.io import read_json, staged_outputs, write_json
from pipelines.layout import Layout
from pipelines.modalities.tabular import baseline_onnx, baselines
from pipelines.models.moe import ProbabilityHead, count_parameters
from pipelines.onnx_export import INPUT
from pipelines.plots import curves_png, pareto_png, variants_png
from pipelines.progress import stage_steps
from pipelines.runtime import session
from pipelines.selection import ONNX_PREFIX
from pipelines.session_memory import session_peak
from pipelines.thresholds import choose_threshold
from pipelines.training import load_checkpoint

REFERENCE = "pytorch_fp32"
# every speed-up's baseline: ONNX Runtime FP32 of the trained model
SPEED_BASELINE = ONNX_PREFIX + "fp32"


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    # the baselines' ONNX graphs are written before they are timed; a failed run leaves none
    with tempfile.TemporaryDirectory(prefix="baselines-") as converted:
        return _evaluate(cfg, layout, Path(converted))


def _evaluate(cfg: PipelineConfig, layout: Layout, converted: Path) -> dict[str, Any]:
    ev = cfg.evaluate
    torch.set_num_threads(ev.threads)
    features = read_json(layout.features_file)["features"]
    splits = ("train", "val", "test") if ev.baselines else ("val", "test")
    inputs = model_inputs(cfg, layout, features, splits)
    (x_val, y_val), (x, y) = inputs["val"], inputs["test"]
    trained = load_checkpoint(layout.checkpoint)
    predictors = {REFERENCE: _torch_predictor(trained)}
    sizes = {REFERENCE: layout.checkpoint.stat().st_size}
    parameters = {REFERENCE: count_parameters(trained.model)}
    onnx_files = {}
    for path in sorted(layout.onnx_dir.glob("model_*.onnx")):
        variant = path.stem.removeprefix("model_")
        name = ONNX_PREFIX + variant
        onnx_files[name] = path
        predictors[name] = _onnx_predictor(session(path, threads=ev.threads))
        sizes[name] = path.stat().st_size
        source = variants_of.checkpoint(layout.onnx_dir, layout.checkpoint, variant)
        parameters[name] = count_parameters(load_checkpoint(source).model)
    baseline_parity: dict[str, dict[str, float]] = {}
    for kind in ev.baselines:
        # the model's train split and features (a sequence model's: each current transaction),
        # measured as it would ship: its ONNX graph in ONNX Runtime, like the model's variants
        name = baselines.PREFIX + kind
        model = baselines.fit(kind, *inputs["train"], seed=cfg.seed, threads=ev.threads)
        path = converted / f"model_{name}.onnx"
        baseline_onnx.to_onnx(model, x.shape[1:], path)
        batch_sizes = list(cfg.export.parity_batch_sizes)
        baseline_parity[name] = baseline_onnx.parity(model, path, x, batch_sizes)
        onnx_files[name] = path
        predictors[name] = _onnx_predictor(session(path, threads=ev.threads))
        sizes[name] = path.stat().st_size

    variants: dict[str, Any] = {}
    size = max(ev.latency_batch_sizes)
    serving_batch = np.ascontiguousarray(x[np.arange(size) % len(x)])
    roc, pr = {}, {}
    # scikit-learn's OpenMP/BLAS pools get the thread count ONNX Runtime and torch have
    with stage_steps("evaluate", len(predictors) + 1) as step, threadpool_limits(ev.threads):
        # every candidate timed round-robin, so machine noise cannot favour one of them (the
        # baselines run in ONNX Runtime too: no scikit-learn OpenMP pool spin-waits between)
        batch_sizes = list(ev.latency_batch_sizes)
        timings = interleaved_latency(predictors, x, batch_sizes, ev.latency_repeats)
        step("latency, every variant interleaved")
        for name, predict in predictors.items():
            # each variant's own threshold: quantization shifts scores a little
            val_probs = predict_all(predict, x_val)
            threshold = choose_threshold(y_val, val_probs, ev.threshold)
            probs = predict_all(predict, x)
            variants[name] = {
                **classification_metrics(y, probs, ev.target_fpr, threshold),
                # what export.select rule `best` ranks by: chosen on validation, never on test
                "val_auprc": ranking_metrics(y_val, val_probs)["auprc"],
                "size_bytes": sizes[name],
                **(
                    {
                        "parameters": parameters[name]["total"],
                        "active_parameters_per_row": parameters[name]["active_per_row"],
                    }
                    if name in parameters
                    else {}
                ),
            }
            if name in onnx_files:
                # peak memory of a fresh process's session of it at the serving batch
                timings[name]["session_memory"] = session_peak(
                    onnx_files[name], serving_batch, ev.threads
                )
            roc[name], pr[name] = curves(y, probs)
            step(name)
    reference, largest = variants[REFERENCE], f"batch{max(ev.latency_batch_sizes)}"
    batches = [f"batch{size}" for size in ev.latency_batch_sizes]
    for name, metrics in variants.items():
        metrics["auprc_retained_vs_fp32"] = (
            metrics["auprc"] / reference["auprc"] if reference["auprc"] else None
        )
        # against ONNX Runtime FP32 of the trained model, same batch and threads: what a
        # variant buys over the plain export. Against PyTorch eager as well, labelled so: that
        # gain is mostly ONNX Runtime's, not the variant's
        for baseline, key in (
            (SPEED_BASELINE, "speedup_vs_onnx_fp32"),
            (REFERENCE, "speedup_vs_pytorch_fp32"),
        ):
            if baseline in timings:
                timings[name][key] = {
                    batch: timings[baseline][batch]["p50_ms"] / timings[name][batch]["p50_ms"]
                    for batch in batches
                }
    # latency varies run to run, so it lives beside the DVC metrics, which stay reproducible
    positives = int(np.sum(y))
    reliable = positives >= ev.min_test_positives
    if not reliable:
        print(
            f"warning: evaluate: the test split has {positives} positive rows (< "
            f"evaluate.min_test_positives = {ev.min_test_positives}); its metrics are unreliable"
        )
    report = {
        "test_rows": len(y),
        "test_positives": positives,
        "test_positive_fraction": float(np.mean(y)),
        "reliable": reliable,
        "threshold_rule": ev.threshold.rule,
        "variants": variants,
        # what the sklearn_* rows are and what their size_bytes measures
        "baselines": {
            name: {
                "trained_on": "the model's train split"
                + (", each history's current transaction" if x.ndim == 3 else ""),
                "measured_as": "its ONNX graph (skl2onnx) in ONNX Runtime, as it would ship",
                "parity_max_abs_diff_vs_sklearn": parity,
            }
            for name, parity in baseline_parity.items()
        },
    }
    outputs = (
        layout.baselines_onnx_dir,
        layout.evaluate_metrics,
        layout.headline_metrics,
        layout.roc_curves,
        layout.pr_curves,
        layout.evaluate_report,
        layout.latency_report,
    )
    with staged_outputs(layout.staging, *outputs) as (
        baselines_folder,
        metrics_file,
        headline_file,
        roc_dir,
        pr_dir,
        folder,
        latency_folder,
    ):
        shutil.copytree(converted, baselines_folder)
        write_json(
            baselines_folder / "candidates.json",
            {
                "candidates": sorted(p.name for p in converted.glob("model_*.onnx")),
                "why": "scikit-learn baselines as ONNX graphs with the model's interface: "
                "export candidates like the model's variants",
            },
        )
        write_json(metrics_file, report)
        write_json(headline_file, headline(report))
        for directory, series in ((roc_dir, roc), (pr_dir, pr)):
            directory.mkdir()
            for name, rows in series.items():
                _write_csv(directory / f"{name}.csv", rows)
        folder.mkdir()
        curves_png(roc, pr, folder / "curves.png")
        latency_folder.mkdir()
        write_json(latency_folder / "latency.json", {"threads": ev.threads, "variants": timings})
        variants_png(variants, timings, latency_folder / "variants.png")
        # latency varies run to run: the Pareto plot lives beside latency.json, not in reports/
        pareto_png(variants, timings, largest, latency_folder / "pareto.png")
    return {**report, "latency": timings}


HEADLINE = ("auroc", "auprc", "f1", "threshold")


def headline(report: dict[str, Any]) -> dict[str, Any]:
    """Per variant: the ranking and decision metrics, the AUPRC kept and the size; what a
    reader compares runs by (the full report stays in evaluate.json)."""
    return {
        "test": {
            name: {
                **{k: round(m[k], 6) for k in HEADLINE},
                "auprc_kept": round(m["auprc_retained_vs_fp32"] or 0.0, 6),
                "kib": round(m["size_bytes"] / 1024, 1),
            }
            for name, m in report["variants"].items()
        }
    }


def _torch_predictor(module):
    head = ProbabilityHead(module.model).eval()

    def predict(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return head(torch.from_numpy(batch)).numpy()

    return predict


def _onnx_predictor(sess):
    def predict(batch: np.ndarray) -> np.ndarray:
        return sess.run(None, {INPUT: batch})[0]

    return predict


def _write_csv(path, rows: list[dict]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
