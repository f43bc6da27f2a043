"""Which variant the export stage ships: `export.select`, a named variant or a rule."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.config import PipelineConfig
from pipelines.errors import PipelineError
from pipelines.schema.evaluation import SelectConfig

# the export ships ONNX graphs: the evaluate report's onnx_* variants of the model and its
# sklearn_* baselines converted to ONNX (the report's PyTorch row is for comparison only)
ONNX_PREFIX = "onnx_"
BASELINE_PREFIX = "sklearn_"


def report_row(candidate: str) -> str:
    """The evaluate report's row of an export candidate: `fp32` -> `onnx_fp32`; a baseline
    (`sklearn_hist_gradient_boosting`) is its own row."""
    return candidate if candidate.startswith(BASELINE_PREFIX) else ONNX_PREFIX + candidate


@dataclass(frozen=True)
class Selection:
    variant: str  # as quantize names the file: fp32, int8_dynamic, ...
    rule: str  # the rule in words, as the model card states it
    reason: str  # why this variant, with the figures the choice rested on
    latency_ms: dict[str, float] | None = None  # rule=fastest: median latency per candidate


def describe(select: SelectConfig) -> str:
    if select.rule == "variant":
        return f"export.select: the named variant {select.variant!r}"
    if select.rule == "best":
        return (
            "export.select: the candidate (every ONNX variant of the model and, for tables, "
            "every scikit-learn baseline) with the highest validation AUPRC (macro-F1 for "
            "multi-class models)"
        )
    return (
        f"export.select: the fastest ONNX variant at batch {select.batch_size} whose test "
        f"AUPRC is at least {select.min_auprc_kept:.2%} of the FP32 model's"
    )


def select_variant(
    select: SelectConfig,
    variants: dict[str, dict],
    available: set[str],
    time_variant: Callable[[str], float],
) -> Selection:
    """`variants`: the evaluate report's per-variant metrics; `available`: the candidates, the
    ONNX files quantize wrote (fp32, int8_dynamic, ...) and the baselines evaluate converted
    (sklearn_hist_gradient_boosting, ...); `time_variant(name)`: median latency in ms at
    select.batch_size. Raises PipelineError (one line naming the rule) when nothing qualifies."""
    rule = describe(select)
    if select.rule == "variant":
        if select.variant not in available:
            raise PipelineError(
                f"{rule}: no such ONNX variant (quantize wrote {', '.join(sorted(available))}); "
                f"enable it in the quantize config or choose another"
            )
        return Selection(select.variant, rule, "named in the config")
    if select.rule == "best":
        return _best(rule, variants, available)
    kept = {
        name: variants[report_row(name)].get("auprc_retained_vs_fp32")
        for name in sorted(available)
        if report_row(name) in variants
    }
    qualifying = sorted(n for n, k in kept.items() if k is not None and k >= select.min_auprc_kept)
    if not qualifying:
        best = max(kept, key=lambda n: kept[n] or 0.0, default=None)
        closest = f"; the best keeps {_pct(kept[best])} ({best})" if best else ""
        raise PipelineError(f"{rule}: no variant qualifies{closest}")
    latency = {name: time_variant(name) for name in qualifying}
    chosen = min(qualifying, key=lambda n: latency[n])
    others = ", ".join(f"{n} {latency[n]:.3f} ms" for n in qualifying if n != chosen)
    rejected = ", ".join(f"{n} {_pct(kept[n])}" for n in sorted(set(kept) - set(qualifying)))
    reason = (
        f"{chosen}: {latency[chosen]:.3f} ms median at batch {select.batch_size}, AUPRC "
        f"{_pct(kept[chosen])} of FP32; slower qualifying variants: {others or 'none'}; "
        f"below the AUPRC floor: {rejected or 'none'}"
    )
    return Selection(chosen, rule, reason, latency)


def _best(rule: str, variants: dict[str, dict], available: set[str]) -> Selection:
    """The highest validation AUPRC wins (validation, so the test split stays unseen by the
    choice); a tie goes to the smaller graph."""
    scored = {
        name: variants[report_row(name)]["val_auprc"]
        for name in sorted(available)
        if "val_auprc" in variants.get(report_row(name), {})
    }
    if not scored:
        raise PipelineError(
            f"{rule}: the evaluate report has no val_auprc for any candidate; rerun evaluate"
        )
    chosen = max(scored, key=lambda n: (scored[n], -variants[report_row(n)]["size_bytes"]))
    ranking = ", ".join(
        f"{n} {scored[n]:.4f}" for n in sorted(scored, key=lambda n: -scored[n])[:5]
    )
    return Selection(chosen, rule, f"{chosen}: validation AUPRC, best first: {ranking}")


def _pct(kept: float | None) -> str:
    return "n/a" if kept is None else f"{kept:.2%}"


def select_multiclass_variant(
    cfg: PipelineConfig,
    evaluation: dict[str, Any],
    available: list[str],
    latency_file: Path,
    modality: str,
) -> tuple[str, str]:
    """export.select for a multi-class model (text, images, series): the named variant, the
    highest validation macro-F1 (rule best; a tie goes to the smaller file), or the fastest
    (evaluate's p50 latency at its largest batch size) of those whose test macro-F1 is at
    least select.min_auprc_kept of the FP32 model's (the tabular rule's floor, read as
    macro-F1 here). Returns (variant, reason)."""
    select = cfg.export.select
    if select.rule == "variant":
        if select.variant not in available:
            raise PipelineError(
                f"config key 'export.select.variant' = {select.variant!r}: quantize wrote "
                f"{', '.join(available)} for this {modality} model; expected one of those"
            )
        return select.variant, "named in the config (export.select.variant)"
    if select.rule == "best":
        scored = {
            v: m["val_macro_f1"]
            for v in available
            if "val_macro_f1" in (m := evaluation["variants"].get(f"onnx_{v}", {}))
        }
        if not scored:
            raise PipelineError(
                f"{describe(select)}: the {modality} evaluate report has no val_macro_f1; "
                "rerun evaluate"
            )
        size = {v: evaluation["variants"][f"onnx_{v}"].get("size_bytes", 0) for v in scored}
        chosen = max(scored, key=lambda v: (scored[v], -size[v]))
        best_first = sorted(scored, key=lambda v: -scored[v])
        ranking = ", ".join(f"{v} {scored[v]:.4f}" for v in best_first)
        return chosen, f"highest validation macro-F1 of the ONNX variants: {ranking}"
    timings = json.loads(latency_file.read_text())["variants"] if latency_file.is_file() else {}
    kept = {
        v: evaluation["variants"][f"onnx_{v}"]["macro_f1_retained_vs_fp32"] or 0.0
        for v in available
    }
    qualifying = [v for v in available if kept[v] >= select.min_auprc_kept]
    if not qualifying:
        raise PipelineError(
            f"config key 'export.select.min_auprc_kept' = {select.min_auprc_kept}: no "
            f"{modality} variant keeps that share of FP32 macro-F1 (best: "
            f"{max(kept.values()):.2%})"
        )
    largest = max(cfg.evaluate.latency_batch_sizes)

    def speed(v: str) -> float:
        return timings.get(f"onnx_{v}", {}).get(f"batch{largest}", {}).get("p50_ms", float("inf"))

    chosen = min(qualifying, key=speed)
    return chosen, (
        f"fastest at batch {largest} ({speed(chosen):.3f} ms p50) of the variants keeping "
        f">= {select.min_auprc_kept:.0%} of FP32 macro-F1 ({kept[chosen]:.2%})"
    )
