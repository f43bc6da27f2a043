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
    evaluation = json.loads(layout.evaluate_metrics.read_text())
    latency = layout.latency_report / "latency.json"
    # absent when the outputs came from `dvc pull` rather than a run on this machine
    timings = json.loads(latency.read_text())["variants"] if latency.is_file() else {}
    unreliable = "" if evaluation.get("reliable", True) else " (too few positives: unreliable)"
    table = Table(
        title=f"test split: {evaluation['test_rows']} rows, "
        f"{evaluation['test_positive_fraction']:.2%} positive{unreliable}; threshold by "
        f"{evaluation.get('threshold_rule', 'fixed')} on val"
    )
    for column in (
        "variant",
        "AUROC",
        "AUPRC",
        "AUPRC kept",
        "recall@1%FPR",
        "threshold",
        "F1",
        "KiB",
        "speed-up",
    ):
        table.add_column(column, justify="right" if column != "variant" else "left")
    for name, m in evaluation["variants"].items():
        recall = next((v for k, v in m.items() if k.startswith("recall_at_")), float("nan"))
        table.add_row(
            name,
            f"{m['auroc']:.4f}",
            f"{m['auprc']:.4f}",
            f"{m['auprc_retained_vs_fp32']:.2%}",
            f"{recall:.4f}",
            f"{m.get('threshold', 0.5):.3f}",
            f"{m['f1']:.4f}",
            f"{m['size_bytes'] / 1024:.0f}",
            f"{timings[name]['speedup_vs_pytorch_fp32']:.2f}x" if name in timings else "n/a",
        )
    Console(width=110).print(table)


if __name__ == "__main__":
    print_summary(Layout(Path(sys.argv[1] if len(sys.argv) > 1 else ".")))
