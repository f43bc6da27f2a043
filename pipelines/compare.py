"""Side-by-side comparison of finished runs, as a page a person can open:

    python -m pipelines.compare outputs/runs/2024-05-01_10-00-00 outputs/sweeps/my_study/3
    python -m pipelines.compare lr-3e-3 lr-5e-4 workspace --out reports/compare   # DVC experiments
    make compare RUNS="..."

A run is a directory with this project's layout (a `train.py` run dir, a sweep trial's dir, or
the repo after `dvc repro`) or the name / revision of a DVC experiment (read through
`dvc exp show --json` and `dvc.api`). Writes `<out>/compare.html` (params that differ, every
metric side by side, the training curves) and `<out>/curves.png`, and prints the params and
metrics tables.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from pipelines.errors import PipelineError
from pipelines.layout import Layout

CURVES = ("val_auprc", "val_auroc", "val_loss", "train_loss_epoch")
# metrics that differ run to run without meaning anything (timings live outside metrics/)
_SKIP_METRICS = ("profile.",)


@dataclass
class Run:
    name: str
    params: dict[str, Any]
    metrics: dict[str, float]
    history: pd.DataFrame | None = None
    source: str = ""
    notes: list[str] = field(default_factory=list)


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}, "c": [1, 2]} -> {"a.b": 1, "c": [1, 2]}"""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: node}


def _numeric(values: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in values.items()
        if isinstance(v, int | float)
        and not isinstance(v, bool)
        and not k.startswith(_SKIP_METRICS)
    }


def from_directory(path: Path) -> Run:
    layout = Layout(path)
    config = path / ".hydra" / "config.yaml"
    params_file = config if config.is_file() else path / "params.yaml"
    if not params_file.is_file() and not (path / "metrics").is_dir():
        raise PipelineError(
            f"{path}: not a run directory (no .hydra/config.yaml, params.yaml or metrics/)"
        )
    params = flatten(yaml.safe_load(params_file.read_text()) or {}) if params_file.is_file() else {}
    metrics: dict[str, float] = {}
    for file in sorted((path / "metrics").glob("*.json")):
        metrics.update(_numeric(flatten(json.loads(file.read_text()), f"{file.stem}.")))
    history = pd.read_csv(layout.train_history) if layout.train_history.is_file() else None
    return Run(
        path.name if path.name not in ("", ".") else str(path.resolve().name),
        params,
        metrics,
        history,
        source=str(path),
    )


def dvc_experiments(repo: Path) -> dict[str, dict[str, Any]]:
    """name and revision -> {rev, params, metrics} of every row `dvc exp show --json` lists."""
    done = subprocess.run(
        [sys.executable, "-m", "dvc", "exp", "show", "--json"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise PipelineError(f"dvc exp show failed in {repo}: {done.stderr.strip()[-300:]}")
    rows: dict[str, dict[str, Any]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            data = node.get("data")
            if isinstance(data, dict) and "rev" in node:
                params: dict[str, Any] = {}
                for entry in (data.get("params") or {}).values():
                    params.update(flatten(entry.get("data") or {}))
                metrics: dict[str, float] = {}
                for file, entry in (data.get("metrics") or {}).items():
                    stem = Path(file).stem
                    metrics.update(_numeric(flatten(entry.get("data") or {}, f"{stem}.")))
                row = {"rev": data.get("rev", node["rev"]), "params": params, "metrics": metrics}
                for key in (node.get("name"), node["rev"], data.get("rev")):
                    if key:
                        rows.setdefault(str(key), row)
            for value in node.values():
                if isinstance(value, list | dict):
                    walk(value)

    walk(json.loads(done.stdout or "[]"))
    return rows


def from_dvc(ref: str, repo: Path, rows: dict[str, dict[str, Any]]) -> Run:
    row = rows.get(ref) or next(
        (r for key, r in rows.items() if len(ref) >= 7 and key.startswith(ref)), None
    )
    if row is None:
        known = ", ".join(sorted(k for k in rows if len(k) < 40)) or "none"
        raise PipelineError(f"{ref!r}: neither a run directory nor a DVC experiment ({known})")
    history = None
    layout = Layout(Path("."))
    try:
        if ref == "workspace":
            text = (repo / layout.train_history).read_text()
        else:
            import dvc.api

            text = dvc.api.read(str(layout.train_history), repo=str(repo), rev=row["rev"])
        history = pd.read_csv(io.StringIO(text))
    except Exception as err:  # noqa: BLE001 - curves are optional; say why they are missing
        notes = [f"no training curves: {type(err).__name__}: {str(err)[:120]}"]
        return Run(ref, row["params"], row["metrics"], None, f"dvc:{row['rev']}", notes)
    return Run(ref, row["params"], row["metrics"], history, source=f"dvc:{row['rev']}")


def load_runs(refs: list[str], repo: Path) -> list[Run]:
    runs: list[Run] = []
    rows: dict[str, dict[str, Any]] | None = None
    for ref in refs:
        path = Path(ref)
        if path.is_dir():
            runs.append(from_directory(path))
            continue
        if rows is None:
            rows = dvc_experiments(repo)
        runs.append(from_dvc(ref, repo, rows))
    names = [r.name for r in runs]
    for run in runs:  # two trial dirs "3" of different sweeps: tell them apart
        if names.count(run.name) > 1:
            run.name = run.source
    return runs


def differing_params(runs: list[Run]) -> pd.DataFrame:
    keys = sorted({k for r in runs for k in r.params})
    rows = {}
    for key in keys:
        values = [r.params.get(key, "—") for r in runs]
        if len({json.dumps(v, sort_keys=True, default=str) for v in values}) > 1:
            rows[key] = [str(v) for v in values]
    return pd.DataFrame.from_dict(rows, orient="index", columns=[r.name for r in runs])


def metrics_table(runs: list[Run]) -> pd.DataFrame:
    keys = sorted({k for r in runs for k in r.metrics})
    frame = pd.DataFrame(
        {r.name: [r.metrics.get(k, float("nan")) for k in keys] for r in runs}, index=keys
    )
    return frame


def plot_curves(runs: list[Run], path: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with_history = [r for r in runs if r.history is not None and not r.history.empty]
    columns = [c for c in CURVES if any(c in r.history.columns for r in with_history)]
    if not columns:
        return None
    fig, axes = plt.subplots(1, len(columns), figsize=(4.2 * len(columns), 3.4), squeeze=False)
    for ax, column in zip(axes[0], columns, strict=True):
        for run in with_history:
            if column in run.history.columns:
                ax.plot(run.history["epoch"], run.history[column], marker="o", label=run.name)
        ax.set_title(column.replace("_", "/", 1))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _best_marks(frame: pd.DataFrame) -> pd.DataFrame:
    """Bold the best value of each metric row (higher is better except losses/sizes)."""

    def mark(row: pd.Series) -> pd.Series:
        values = pd.to_numeric(row, errors="coerce")
        if values.notna().sum() < 2 or values.nunique() < 2:
            return row.map(lambda v: f"{v:.6g}" if isinstance(v, float) else v)
        lower = any(w in row.name for w in ("loss", "size", "bytes", "latency", "_ms"))
        best = values.min() if lower else values.max()
        return row.map(lambda v: f"<b>{v:.6g}</b>" if v == best else f"{v:.6g}")

    return frame.apply(mark, axis=1)


def write_report(runs: list[Run], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    params = differing_params(runs)
    metrics = metrics_table(runs)
    curves = plot_curves(runs, out / "curves.png")
    parts = [
        "<h1>Run comparison</h1>",
        "<ul>"
        + "".join(
            f"<li><b>{html.escape(r.name)}</b>: {html.escape(r.source)}"
            + "".join(f" ({html.escape(n)})" for n in r.notes)
            + "</li>"
            for r in runs
        )
        + "</ul>",
        "<h2>Params that differ</h2>",
        params.to_html(escape=True) if not params.empty else "<p>none: same config</p>",
        "<h2>Metrics</h2>",
        _best_marks(metrics).to_html(escape=False) if not metrics.empty else "<p>none</p>",
    ]
    if curves is not None:
        data = base64.b64encode(curves.read_bytes()).decode()
        parts += ["<h2>Training curves</h2>", f'<img src="data:image/png;base64,{data}">']
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}img{max-width:100%}"
    )
    page = out / "compare.html"
    page.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>Run comparison</title>"
        f"<style>{style}</style></head><body>{''.join(parts)}</body></html>"
    )
    (out / "compare.json").write_text(
        json.dumps(
            {"params_that_differ": params.to_dict(), "metrics": metrics.to_dict()},
            indent=2,
            default=str,
        )
    )
    return page


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("runs", nargs="+", help="run directories or DVC experiment names/revs")
    parser.add_argument("--out", default="reports/compare", help="folder for compare.html")
    parser.add_argument("--repo", default=".", help="DVC repository for experiment names")
    args = parser.parse_args(argv)
    try:
        runs = load_runs(args.runs, Path(args.repo))
        page = write_report(runs, Path(args.out))
    except PipelineError as err:
        print(f"error: compare: {err}", file=sys.stderr)
        sys.exit(2)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        params = differing_params(runs)
        print("params that differ:\n" + (params.to_string() if not params.empty else "  none"))
        metrics = metrics_table(runs)
        wanted = [k for k in metrics.index if k.startswith(("train.val.", "evaluate.variants"))]
        shown = metrics.loc[wanted] if wanted else metrics
        print("\nmetrics:\n" + shown.to_string(float_format=lambda v: f"{v:.4f}"))
    print(f"\nwrote {page} and {page.parent / 'curves.png'}")


if __name__ == "__main__":
    main()
