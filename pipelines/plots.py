"""PNG and HTML views of the profile and evaluation reports (matplotlib, headless)."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def profile_png(report: dict[str, Any], path: Path) -> None:
    columns = report["columns"]
    names = list(columns)
    fig, axes = plt.subplots(1, 3, figsize=(16, max(4, 0.3 * len(names) + 1.5)))
    axes[0].barh(names, [columns[n]["missing_fraction"] for n in names], color="tab:orange")
    axes[0].set_title("missing fraction")
    axes[1].barh(names, [columns[n]["drift_psi"] or 0.0 for n in names], color="tab:red")
    axes[1].set_title("train vs test drift (PSI)")
    corr = [columns[n].get("corr_with_label") or 0.0 for n in names]
    axes[2].barh(names, corr, color="tab:blue")
    axes[2].set_title("correlation with label (train)")
    for ax in axes[1:]:
        ax.set_yticklabels([])
    splits = report["splits"]
    balance = ", ".join(
        f"{k}: {v['positive_fraction']:.2%} of {v['rows']}" for k, v in splits.items()
    )
    fig.suptitle(f"Profile: {report['rows']} rows; positive rate {balance}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def gates_html(failures: list[str]) -> str:
    """The profile pages' verdict: each failed quality gate, or that all passed."""
    if failures:
        listed = "<br>".join(map(html.escape, failures))
        return f"<p style='color:#b00'>Failed gates:<br>{listed}</p>"
    return "<p style='color:#070'>All quality gates passed.</p>"


def profile_html(report: dict[str, Any], png: Path, path: Path, failures: list[str]) -> None:
    rows = "".join(
        "<tr><td>{}</td>{}</tr>".format(
            html.escape(name),
            "".join(
                f"<td>{_fmt(stats.get(k))}</td>"
                for k in (
                    "kind",
                    "missing_fraction",
                    "mean",
                    "std",
                    "min",
                    "max",
                    "n_unique",
                    "drift_psi",
                )
            ),
        )
        for name, stats in report["columns"].items()
    )
    gates = gates_html(failures)
    image = base64.b64encode(png.read_bytes()).decode()
    path.write_text(
        "<html><head><meta charset='utf-8'><title>Data profile</title></head><body>"
        f"<h1>Data profile</h1>{gates}"
        f"<img src='data:image/png;base64,{image}' style='max-width:100%'>"
        "<table border=1 cellpadding=3><tr><th>column</th><th>kind</th><th>missing</th>"
        "<th>mean</th>"
        f"<th>std</th><th>min</th><th>max</th><th>unique</th><th>PSI</th></tr>{rows}</table>"
        f"<h2>Splits</h2><pre>{html.escape(json.dumps(report['splits'], indent=2))}</pre>"
        "</body></html>"
    )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value)) if value is not None else ""


def curves_png(roc: dict[str, list[dict]], pr: dict[str, list[dict]], path: Path) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    for name, points in roc.items():
        left.plot([p["fpr"] for p in points], [p["tpr"] for p in points], label=name)
    left.plot([0, 1], [0, 1], ":", color="grey")
    left.set(
        title="ROC", xlabel="false-positive rate", ylabel="recall", xscale="log", xlim=(1e-4, 1)
    )
    for name, points in pr.items():
        right.plot([p["recall"] for p in points], [p["precision"] for p in points], label=name)
    right.set(title="Precision-recall", xlabel="recall", ylabel="precision")
    left.legend()
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def variants_png(
    metrics: dict[str, dict[str, Any]], timings: dict[str, dict[str, Any]], path: Path
) -> None:
    names = list(metrics)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    axes[0].bar(names, [metrics[n]["auprc"] for n in names])
    axes[0].set_title("AUPRC (test)")
    axes[1].bar(names, [timings[n]["throughput_rows_per_s"] for n in names])
    axes[1].set_title("throughput, rows/s (largest batch)")
    axes[2].bar(names, [metrics[n]["size_bytes"] / 1024 for n in names])
    axes[2].set_title("size (KiB)")
    for ax in axes:
        ax.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def pareto_front(points: dict[str, tuple[float, float]]) -> list[str]:
    """Names of the points (latency, metric) no other point beats on both: not slower and not
    worse, and better on one. Sorted by latency."""
    front = [
        name
        for name, (lat, metric) in points.items()
        if not any(
            (o_lat <= lat and o_metric >= metric) and (o_lat < lat or o_metric > metric)
            for other, (o_lat, o_metric) in points.items()
            if other != name
        )
    ]
    return sorted(front, key=lambda n: points[n][0])


def pareto_png(
    metrics: dict[str, dict[str, Any]],
    timings: dict[str, dict[str, Any]],
    batch: str,
    path: Path,
    metric: str = "auprc",
) -> None:
    """Test `metric` against p50 latency at `batch` (e.g. "batch256"), one marker per variant,
    its area proportional to the file size; the Pareto front joined by a line."""
    names = list(metrics)
    points = {n: (timings[n][batch]["p50_ms"], metrics[n][metric]) for n in names}
    sizes = [metrics[n]["size_bytes"] for n in names]
    scale = 1500 / max(sizes)
    fig, ax = plt.subplots(figsize=(9, 6))
    for name, size in zip(names, sizes, strict=True):
        lat, value = points[name]
        ax.scatter(lat, value, s=max(size * scale, 15), alpha=0.5)
        ax.annotate(f"{name}\n{size / 1024:.0f} KiB", (lat, value), fontsize=8, ha="center")
    front = pareto_front(points)
    ax.plot([points[n][0] for n in front], [points[n][1] for n in front], "--", color="grey")
    ax.set(
        xscale="log",
        xlabel=f"p50 latency at {batch.removeprefix('batch')} rows per call (ms, log)",
        ylabel=f"test {metric.upper()}",
        title="Variants: metric vs latency (marker area = file size; dashed: Pareto front)",
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
