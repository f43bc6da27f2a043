"""A short terminal summary of a finished run, read from its metrics files:
`python -m pipelines.summary [root]`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pipelines.errors import PipelineError
from pipelines.layout import Layout
from pipelines.modalities.registry import STAGES, modality
from pipelines.stage_times import read as read_stage_times
from pipelines.stage_times import wall_time_line


def metric_value(layout: Layout, name: str) -> float:
    """`val/auprc` -> metrics/train.json["val"]["auprc"]; `test/<variant>/<metric>` -> evaluate."""
    parts = name.split("/")
    if parts[0] == "val":
        source, node = layout.train_metrics, json.loads(layout.train_metrics.read_text())["val"]
    elif parts[0] == "test":
        source, node = (
            layout.evaluate_metrics,
            json.loads(layout.evaluate_metrics.read_text())["variants"],
        )
    else:
        raise PipelineError(
            f"config key 'optimized_metric' = {name!r}: "
            "expected val/<metric> or test/<variant>/<metric>"
        )
    for part in parts[1:]:
        if part not in node:
            raise PipelineError(
                f"config key 'optimized_metric' = {name!r}: {part!r} not in {source}"
            )
        node = node[part]
    return float(node)


def print_summary(layout: Layout) -> None:
    _print_metrics(layout)
    # absent when the outputs came from `dvc pull` rather than a run on this machine
    if times := read_stage_times(layout, STAGES):
        print(wall_time_line(times))


def _print_metrics(layout: Layout) -> None:
    evaluation = json.loads(layout.evaluate_metrics.read_text())
    latency = layout.latency_report / "latency.json"
    # absent when the outputs came from `dvc pull` rather than a run on this machine
    timings = json.loads(latency.read_text())["variants"] if latency.is_file() else {}
    # a multi-class report names its classes; a binary one (tables) reports AUPRC instead
    if "classes" in evaluation:
        _print_multiclass_summary(evaluation, timings)
        return
    unreliable = "" if evaluation.get("reliable", True) else " (too few positives: unreliable)"
    table = Table(
        title=f"test split: {evaluation['test_rows']} rows, "
        f"{evaluation['test_positive_fraction']:.2%} positive{unreliable}; threshold by "
        f"{evaluation.get('threshold_rule', 'fixed')} on val"
    )
    serving = _serving_batch(timings)
    for column in (
        "variant",
        "AUROC",
        "AUPRC",
        "AUPRC kept",
        "recall@1%FPR",
        "threshold",
        "F1",
        "params",
        "KiB",
        f"ms @{serving or '?'}",
        "vs ORT FP32",
        "vs PyTorch",
    ):
        table.add_column(column, justify="right" if column != "variant" else "left")
    for name, m in evaluation["variants"].items():
        recall = next((v for k, v in m.items() if k.startswith("recall_at_")), float("nan"))
        timing = timings.get(name, {})
        table.add_row(
            name,
            f"{m['auroc']:.4f}",
            f"{m['auprc']:.4f}",
            f"{m['auprc_retained_vs_fp32']:.2%}",
            f"{recall:.4f}",
            f"{m.get('threshold', 0.5):.3f}",
            f"{m['f1']:.4f}",
            f"{m['parameters']:,}" if "parameters" in m else "",
            f"{m['size_bytes'] / 1024:.0f}",
            f"{timing[f'batch{serving}']['p50_ms']:.3f}" if serving and timing else "n/a",
            _ratio(timing, "speedup_vs_onnx_fp32", serving),
            _ratio(timing, "speedup_vs_pytorch_fp32", serving),
        )
    Console(width=150).print(table)
    if serving:
        print(
            f"speed-ups: p50 latency at batch {serving} against ONNX Runtime FP32 of the trained "
            "model, and against PyTorch eager (most of that gain is ONNX Runtime's)"
        )


def _print_multiclass_summary(evaluation: dict, timings: dict) -> None:
    """Multi-class runs: accuracy and macro-F1 per variant; where the report has the defect
    view (a `good_class` was declared), its recall and precision at evaluate.defect_recall. The
    rows are counted in the report's own unit (texts, images)."""
    defect_view = "good_class" in evaluation
    serving = _serving_batch(timings)
    plugin = modality(evaluation["modality"])
    unit = plugin.fact("ROWS", "rows")
    table = Table(
        title=f"test split: {evaluation['test_rows']} {unit}, {len(evaluation['classes'])} classes"
    )
    columns = ["variant", "accuracy", "macro-F1", "macro-F1 kept"]
    if defect_view:
        columns += ["defect recall", "precision@recall"]
    columns += ["KiB", f"ms @{serving or '?'}", "vs ORT FP32"]
    for column in columns:
        table.add_column(column, justify="right" if column != "variant" else "left")
    reference = timings.get("onnx_fp32", {}).get(f"batch{serving}", {}).get("p50_ms")
    for name, m in evaluation["variants"].items():
        ms = timings.get(name, {}).get(f"batch{serving}", {}).get("p50_ms")
        row = [
            name,
            f"{m['accuracy']:.4f}",
            f"{m['macro_f1']:.4f}",
            f"{m['macro_f1_retained_vs_fp32']:.2%}",
        ]
        if defect_view:
            at = m.get("precision_at_defect_recall")
            row += [
                f"{m['defect_recall']:.4f}" if "defect_recall" in m else "n/a",
                f"{at['precision']:.4f} @{at['recall_target']:.0%}" if at else "n/a",
            ]
        row += [
            f"{m['size_bytes'] / 1024:.0f}" if "size_bytes" in m else "",
            f"{ms:.3f}" if ms is not None else "n/a",
            f"{reference / ms:.2f}x" if ms and reference else "n/a",
        ]
        table.add_row(*row)
    Console(width=150).print(table)
    print(f"latency: p50 at batch {serving}, {plugin.fact('LATENCY_INPUTS', 'model inputs in')}")


def _serving_batch(timings: dict) -> int | None:
    sizes = [
        int(k.removeprefix("batch")) for t in timings.values() for k in t if k.startswith("batch")
    ]
    return max(sizes) if sizes else None


def _ratio(timing: dict, key: str, serving: int | None) -> str:
    value = timing.get(key, {}).get(f"batch{serving}") if serving else None
    return "n/a" if value is None else f"{value:.2f}x"


if __name__ == "__main__":
    print_summary(Layout(Path(sys.argv[1] if len(sys.argv) > 1 else ".")))
