"""export for text: the chosen ONNX variant with tokenizer.json, labels.json and the model
card, enough to score raw text from that folder alone (README: the scoring snippet)."""

from __future__ import annotations

import json
from typing import Any

from pipelines.config import PipelineConfig, to_container
from pipelines.errors import PipelineError
from pipelines.io import read_json, read_split, staged_outputs
from pipelines.layout import Layout
from pipelines.text.plugins.common import (
    ONNX_VARIANTS,
    TEXT,
    variant_file,
)


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from pipelines.text.export_folder import score_texts, write_text_export
    from pipelines.text.lightning import load_text_checkpoint

    module, tokenizer = load_text_checkpoint(layout.checkpoint)
    classes = list(module.hparams.class_names)
    evaluation = read_json(layout.evaluate_metrics)
    variant, reason = select_text_variant(cfg, evaluation, layout)
    metrics = evaluation["variants"][f"onnx_{variant}"]
    card = {
        "name": f"{cfg.data.name}-{cfg.model.name}",
        "task": "text classification",
        "variant": variant,
        "selection": {"rule": cfg.export.select.rule, "reason": reason},
        "test_metrics": {
            "rows": evaluation["test_rows"],
            "accuracy": metrics["accuracy"],
            "macro_f1": metrics["macro_f1"],
            "macro_f1_retained_vs_fp32": metrics["macro_f1_retained_vs_fp32"],
            "tfidf_baseline_macro_f1": evaluation["variants"]["tfidf_logistic_regression"][
                "macro_f1"
            ],
        },
        "config": {
            **{k: to_container(getattr(cfg, k)) for k in ("data", "model", "train", "quantize")},
            "seed": cfg.seed,
        },
    }
    with staged_outputs(layout.staging, layout.export_dir) as (folder,):
        write_text_export(
            folder,
            variant_file(layout.onnx_dir, variant),
            layout.onnx_dir / "tokenizer.json",
            classes,
            card,
        )
        # the folder scores raw text alone, as the README's snippet does: checked here against
        # the evaluate stage's figures for the same variant on a few test texts
        test = read_split(layout.split(layout.cleaned, "test"))
        sample = [t or "" for t in test[TEXT][:64]]
        scored = score_texts(folder, sample)
        if len(scored) != len(sample) or any(s["label"] not in classes for s in scored):
            raise PipelineError(f"{folder}: the exported folder did not score {len(sample)} texts")
    summary = {
        "variant": variant,
        "reason": reason,
        "files": sorted(p.name for p in layout.export_dir.iterdir()),
    }
    print(f"export: {variant} ({reason}) -> {layout.export_dir}")
    return summary


def select_text_variant(
    cfg: PipelineConfig, evaluation: dict[str, Any], layout: Layout
) -> tuple[str, str]:
    """export.select for text: the named variant, or the fastest (evaluate's p50 latency at
    its largest batch size) of those whose test macro-F1 is at least select.min_auprc_kept of
    the FP32 model's (the tabular rule's floor, read as macro-F1 here)."""
    select = cfg.export.select
    available = [v for v in ONNX_VARIANTS if variant_file(layout.onnx_dir, v).is_file()]
    if select.rule == "variant":
        if select.variant not in available:
            raise PipelineError(
                f"config key 'export.select.variant' = {select.variant!r}: quantize wrote "
                f"{', '.join(available)} for this text model; expected one of those"
            )
        return select.variant, "named in the config (export.select.variant)"
    latency_file = layout.latency_report / "latency.json"
    timings = json.loads(latency_file.read_text())["variants"] if latency_file.is_file() else {}
    kept = {
        v: evaluation["variants"][f"onnx_{v}"]["macro_f1_retained_vs_fp32"] or 0.0
        for v in available
    }
    qualifying = [v for v in available if kept[v] >= select.min_auprc_kept]
    if not qualifying:
        raise PipelineError(
            f"config key 'export.select.min_auprc_kept' = {select.min_auprc_kept}: no text "
            f"variant keeps that share of FP32 macro-F1 (best: {max(kept.values()):.2%})"
        )
    largest = max(cfg.evaluate.latency_batch_sizes)

    def speed(v: str) -> float:
        return timings.get(f"onnx_{v}", {}).get(f"batch{largest}", {}).get("p50_ms", float("inf"))

    chosen = min(qualifying, key=speed)
    return chosen, (
        f"fastest at batch {largest} ({speed(chosen):.3f} ms p50) of the variants keeping "
        f">= {select.min_auprc_kept:.0%} of FP32 macro-F1 ({kept[chosen]:.2%})"
    )
