"""What every modality's data profile shares: quantile summaries, rates, the quality-gate
verdicts worded alike ("val: duplicate rate 0.3000 > data.<modality>.profile.gates.
max_duplicate_rate = 0.2"), the label-balance and quantile panels of the PNG, and the HTML
page around a modality's own figures. A modality supplies which figures it measures."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.core.config_checks import (
    AFTER_TRAIN,
    DRIFT,
    EVERY_SPLIT,
    ProfileGates,
    gated_figures,
)
from pipelines.plots import gates_html


def quantiles(values: np.ndarray) -> dict[str, float]:
    """min, p5, median, p95, max and mean ({} for no values)."""
    if len(values) == 0:
        return {}
    points = np.percentile(values, [0, 5, 50, 95, 100])
    names = ("min", "p5", "median", "p95", "max")
    summary = {n: float(p) for n, p in zip(names, points, strict=True)}
    return {**summary, "mean": float(values.mean())}


def rate(count: int, total: int) -> float:
    return float(count / total) if total else 0.0


def check_gates(report: dict[str, Any], gates: ProfileGates) -> list[str]:
    """The gates a report missed, one line each, naming the split, the figure and the key
    under `gates.key` (e.g. data.text.profile.gates) that set the limit. Each `max_<figure>`
    field of `gates` (declared with config_checks.gate) bounds that figure of the report, in
    the splits it is measured in. Per split: its rows (min_rows) and its figures; the train
    split's rarest label (min_class_rows); then the train-vs-test drift figures."""
    every_split = gated_figures(gates, EVERY_SPLIT)
    after_train = gated_figures(gates, AFTER_TRAIN)
    drift = gated_figures(gates, DRIFT)
    key = gates.key
    failures: list[str] = []

    def over(split: str, stats: dict[str, Any], figure: str, name: str) -> None:
        value, limit = stats[figure], getattr(gates, f"max_{figure}")
        if value is not None and value > limit:
            failures.append(f"{split}: {name} {value:.4f} > {key}.max_{figure} = {limit}")

    names = list(report["splits"])
    for name, stats in report["splits"].items():
        if stats["rows"] < gates.min_rows:
            failures.append(f"{name}: {stats['rows']} rows < {key}.min_rows = {gates.min_rows}")
        for figure, figure_name in [
            *every_split.items(),
            *(after_train.items() if name != names[0] else ()),
        ]:
            over(name, stats, figure, figure_name)
    rarest = min(report["splits"][names[0]]["labels"].items(), key=lambda kv: kv[1], default=None)
    if rarest is not None and rarest[1] < gates.min_class_rows:
        failures.append(
            f"{names[0]}: label {rarest[0]!r} has {rarest[1]} rows < {key}.min_class_rows = "
            f"{gates.min_class_rows}"
        )
    for figure, figure_name in drift.items():
        over(" vs ".join(report["drift"]["between"]), report["drift"], figure, figure_name)
    return failures


def panels(count: int, width: float) -> tuple[Any, Any]:
    """A figure of `count` panels side by side (matplotlib without a display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, count, figsize=(width, 4.2))


def save_figure(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def label_balance(ax: Any, splits: dict[str, dict[str, Any]]) -> None:
    """Grouped bars: each label's share of each split's rows."""
    labels = sorted({label for stats in splits.values() for label in stats["labels"]})
    width = 0.8 / max(1, len(splits))
    for offset, (name, stats) in enumerate(splits.items()):
        total = max(1, stats["rows"])
        shares = [stats["labels"].get(label, 0) / total for label in labels]
        ax.bar(np.arange(len(labels)) + offset * width, shares, width, label=name)
    ax.set_xticks(np.arange(len(labels)) + 0.4 - width / 2, labels, rotation=45, ha="right")


def quantile_marks(
    ax: Any, splits: dict[str, dict[str, Any]], figure: str, *, extremes: bool = False
) -> None:
    """Per split, the median of `figure`'s quantiles with a p5-p95 bar (and a dotted min-max
    line when `extremes`)."""
    for offset, (name, stats) in enumerate(splits.items()):
        q = stats[figure]
        if q:
            ax.errorbar(
                [offset],
                [q["median"]],
                yerr=[[q["median"] - q["p5"]], [q["p95"] - q["median"]]],
                fmt="o",
                capsize=6,
                label=name,
            )
            if extremes:
                ax.plot([offset, offset], [q["min"], q["max"]], "k:", lw=1)
    ax.set_xticks(range(len(splits)), list(splits))


def png_tag(png: Path) -> str:
    """The picture inlined, so the page is one file."""
    return (
        f"<img src='data:image/png;base64,{base64.b64encode(png.read_bytes()).decode()}' "
        "style='max-width:100%'>"
    )


def write_profile_page(
    path: Path,
    title: str,
    report: dict[str, Any],
    failures: list[str],
    pictures: str,
    figures: Sequence[str],
    sections: dict[str, Any],
) -> None:
    """The HTML page: gate verdicts, `pictures` (HTML), a table of `figures` per split, then
    each of `sections` (heading -> JSON-ready value)."""
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td>"
        + "".join(f"<td>{_cell(stats.get(key))}</td>" for key in figures)
        + "</tr>"
        for name, stats in report["splits"].items()
    )
    header = "".join(f"<th>{key.replace('_', ' ')}</th>" for key in figures)
    extra = "".join(
        f"<h2>{heading}</h2><pre>{html.escape(json.dumps(value, indent=2))}</pre>"
        for heading, value in sections.items()
    )
    path.write_text(
        f"<html><head><meta charset='utf-8'><title>{title}</title></head><body>"
        f"<h1>{title}</h1>{gates_html(failures)}{pictures}"
        f"<table border=1 cellpadding=3><tr><th>split</th>{header}</tr>{rows}</table>"
        f"{extra}</body></html>",
        encoding="utf-8",
    )


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, list):
        return ", ".join(f"{v:.3f}" for v in value)
    return html.escape(str(value))
