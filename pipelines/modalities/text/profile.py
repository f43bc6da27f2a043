"""The text profile: what a team asks of a ticket corpus before trusting it. Per split: length
in characters and words, language mix, duplicate and near-duplicate rates, the abusive-text
rate, label balance; across splits: exact and near-duplicate leaks of val/test into train,
vocabulary size of train and the out-of-vocabulary rate of val/test against it, and the
train-vs-test drift of length and label. Quality gates declared in YAML turn any of these
into a failed stage; a PNG and an HTML page sit beside the JSON.

Words here are `\\w+` runs, casefolded: the profile runs before train, so the model's
tokenizer does not exist yet, and word-level vocabulary is what a reviewer reads anyway. The
detectors are the cleaning rules' own (pipelines/modalities/text/rules.py,
pipelines/modalities/text/dedup.py), so
what the profile counts is what clean would remove with the same settings.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from datasets import Dataset

from pipelines.modalities.text.dedup import (
    exact_key,
    exact_pass,
    minhash_template,
    near_pass,
    signature,
)
from pipelines.modalities.text.rules import detect_language, is_abusive, language_ok
from pipelines.modalities.text.rules_config import GATES_KEY as KEY
from pipelines.modalities.text.rules_config import TextCleanConfig, TextGatesConfig
from pipelines.plots import gates_html
from pipelines.profiling import categorical_psi, population_stability_index

_WORDS = re.compile(r"\w+")


def _quantiles(values: np.ndarray) -> dict[str, float]:
    if len(values) == 0:
        return {}
    points = np.percentile(values, [0, 5, 50, 95, 100])
    return {
        "min": float(points[0]),
        "p5": float(points[1]),
        "median": float(points[2]),
        "p95": float(points[3]),
        "max": float(points[4]),
        "mean": float(values.mean()),
    }


def profile_text_splits(
    splits: dict[str, Dataset], rules: TextCleanConfig, language_sample: int = 2000
) -> dict[str, Any]:
    """The report (JSON-ready), with the cleaning rules' settings (`rules`) deciding what
    counts as foreign, abusive or a near duplicate. `splits` in train, val, test order.

    The language mix is estimated on up to `language_sample` rows per split (a seeded
    sample): langdetect takes about 6 ms a text, which on 100k tickets would be ten CPU
    minutes for a figure a sample gives to within a point. The report says how many rows it
    read. Everything else reads every row."""
    names = list(splits)
    text_column, label_column = rules.text_column, rules.label_column or "label"
    # `[:]`: datasets 5 returns a lazy column that reads row by row when iterated
    texts = {name: [t or "" for t in ds[text_column][:]] for name, ds in splits.items()}
    labels = {name: [str(v) for v in ds[label_column][:]] for name, ds in splits.items()}
    words = {name: [_WORDS.findall(t.casefold()) for t in ts] for name, ts in texts.items()}

    everything = [[True] * len(texts[n]) for n in names]
    exact = exact_pass([[exact_key(t) for t in texts[n]] for n in names], everything)
    near = rules.dedup
    template = minhash_template(near.num_perm, near.seed)
    signatures = [
        np.stack([signature(t, template, near.shingle_size) for t in texts[n]])
        if texts[n]
        else np.zeros((0, near.num_perm), dtype=np.uint32)
        for n in names
    ]
    # near duplicates among the rows exact matching left, as clean does
    remaining = [[v == "" for v in verdicts] for verdicts in exact]
    nearby = near_pass(signatures, remaining, near.threshold, near.seed)
    rng = np.random.default_rng(near.seed)

    train_vocabulary = Counter(w for row in words[names[0]] for w in row)
    report: dict[str, Any] = {"splits": {}, "train_vocabulary_size": len(train_vocabulary)}
    for i, name in enumerate(names):
        n = len(texts[name])
        chars = np.array([len(t) for t in texts[name]], dtype=float)
        n_words = np.array([len(w) for w in words[name]], dtype=float)
        sample = sorted(rng.permutation(n)[:language_sample]) if n else []
        detected = Counter(detect_language(texts[name][j], rules.language) for j in sample)
        split_words = [w for row in words[name] for w in row]
        unseen = sum(w not in train_vocabulary for w in split_words)
        label_counts = Counter(labels[name])
        report["splits"][name] = {
            "rows": n,
            "chars": _quantiles(chars),
            "words": _quantiles(n_words),
            "empty_rate": _rate(sum(not t.strip() for t in texts[name]), n),
            "languages": dict(detected.most_common()),
            "language_sample_rows": len(sample),
            # the clean rule's own verdict (confidence threshold), not the top guess, so the
            # profile predicts what clean removes
            "foreign_rate": _rate(
                sum(not language_ok(texts[name][j], rules.language) for j in sample), len(sample)
            ),
            "duplicate_rate": _rate(exact[i].count("duplicate") + nearby[i].count("duplicate"), n),
            "exact_duplicate_rate": _rate(exact[i].count("duplicate"), n),
            "near_duplicate_rate": _rate(nearby[i].count("duplicate"), n),
            "leak_rate": _rate(exact[i].count("leak") + nearby[i].count("leak"), n),
            "abusive_rate": _rate(sum(is_abusive(t, rules.abuse) for t in texts[name]), n),
            "labels": dict(sorted(label_counts.items())),
            "vocabulary_size": len(set(split_words)),
            "oov_rate": None if i == 0 else _rate(unseen, len(split_words)),
        }
    train, test = names[0], names[-1]
    report["drift"] = {
        "length_psi": population_stability_index(
            pd.Series([len(t) for t in texts[train]]), pd.Series([len(t) for t in texts[test]])
        ),
        "label_psi": categorical_psi(pd.Series(labels[train]), pd.Series(labels[test])),
        "between": [train, test],
    }
    return report


def _rate(count: int, total: int) -> float:
    return float(count / total) if total else 0.0


def check_text_gates(report: dict[str, Any], gates: TextGatesConfig) -> list[str]:
    """One line per gate missed, naming the split, the figure and the gate's key."""
    failures: list[str] = []

    def over(split: str, figure: str, value: float | None, limit: float, key: str) -> None:
        if value is not None and value > limit:
            failures.append(f"{split}: {figure} {value:.4f} > {KEY}.{key} = {limit}")

    names = list(report["splits"])
    for name, stats in report["splits"].items():
        if stats["rows"] < gates.min_rows:
            failures.append(f"{name}: {stats['rows']} rows < {KEY}.min_rows = {gates.min_rows}")
        over(name, "duplicate rate", stats["duplicate_rate"], gates.max_duplicate_rate,
             "max_duplicate_rate")  # fmt: skip
        over(name, "abusive rate", stats["abusive_rate"], gates.max_abusive_rate,
             "max_abusive_rate")  # fmt: skip
        over(name, "foreign-language rate", stats["foreign_rate"], gates.max_foreign_rate,
             "max_foreign_rate")  # fmt: skip
        if name != names[0]:
            over(name, "leak rate (duplicates of train rows)", stats["leak_rate"],
                 gates.max_leak_rate, "max_leak_rate")  # fmt: skip
            over(name, "out-of-vocabulary rate", stats["oov_rate"], gates.max_oov_rate,
                 "max_oov_rate")  # fmt: skip
    rarest = min(report["splits"][names[0]]["labels"].items(), key=lambda kv: kv[1], default=None)
    if rarest is not None and rarest[1] < gates.min_class_rows:
        failures.append(
            f"{names[0]}: label {rarest[0]!r} has {rarest[1]} rows < {KEY}.min_class_rows = "
            f"{gates.min_class_rows}"
        )
    drift = report["drift"]
    pair = " vs ".join(drift["between"])
    over(pair, "length PSI", drift["length_psi"], gates.max_length_psi, "max_length_psi")
    over(pair, "label PSI", drift["label_psi"], gates.max_label_psi, "max_label_psi")
    return failures


def text_profile_png(report: dict[str, Any], path: Path) -> None:
    """Character-length quantiles, label balance and language mix, one panel each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    splits = report["splits"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for offset, (name, stats) in enumerate(splits.items()):
        q = stats["chars"]
        if q:
            axes[0].errorbar(
                [offset],
                [q["median"]],
                yerr=[[q["median"] - q["p5"]], [q["p95"] - q["median"]]],
                fmt="o",
                capsize=6,
                label=name,
            )
    axes[0].set_xticks(range(len(splits)), list(splits))
    axes[0].set_ylabel("characters (median, p5-p95)")
    axes[0].set_title("text length")
    labels = sorted({label for stats in splits.values() for label in stats["labels"]})
    width = 0.8 / max(1, len(splits))
    for offset, (name, stats) in enumerate(splits.items()):
        total = max(1, stats["rows"])
        shares = [stats["labels"].get(label, 0) / total for label in labels]
        axes[1].bar(np.arange(len(labels)) + offset * width, shares, width, label=name)
    axes[1].set_xticks(np.arange(len(labels)) + 0.4 - width / 2, labels, rotation=45, ha="right")
    axes[1].set_ylabel("share of rows")
    axes[1].set_title("label balance")
    axes[1].legend()
    languages = Counter()
    for stats in splits.values():
        languages.update(stats["languages"])
    top = [lang for lang, _ in languages.most_common(8)]
    axes[2].bar(top, [languages[lang] for lang in top])
    axes[2].set_yscale("log")
    axes[2].set_title("detected language (all splits, ? = too short to tell)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def text_profile_html(report: dict[str, Any], png: Path, path: Path, failures: list[str]) -> None:
    figures = (
        "rows",
        "empty_rate",
        "foreign_rate",
        "duplicate_rate",
        "leak_rate",
        "abusive_rate",
        "vocabulary_size",
        "oov_rate",
    )
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td>"
        + "".join(f"<td>{_cell(stats.get(key))}</td>" for key in figures)
        + "</tr>"
        for name, stats in report["splits"].items()
    )
    gates = gates_html(failures)
    image = base64.b64encode(png.read_bytes()).decode()
    header = "".join(f"<th>{key.replace('_', ' ')}</th>" for key in figures)
    path.write_text(
        "<html><head><meta charset='utf-8'><title>Text profile</title></head><body>"
        f"<h1>Text profile</h1>{gates}"
        f"<img src='data:image/png;base64,{image}' style='max-width:100%'>"
        f"<table border=1 cellpadding=3><tr><th>split</th>{header}</tr>{rows}</table>"
        f"<h2>Drift</h2><pre>{html.escape(json.dumps(report['drift'], indent=2))}</pre>"
        "</body></html>",
        encoding="utf-8",
    )


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return html.escape(str(value))
