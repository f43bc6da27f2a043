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

import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from datasets import Dataset

from pipelines.core import profile_page as page
from pipelines.core.dedup import exact_pass
from pipelines.modalities.text.dedup import (
    exact_key,
    minhash_template,
    near_pass,
    signature,
)
from pipelines.modalities.text.rules import detect_language, is_abusive, language_ok
from pipelines.modalities.text.rules_config import TextCleanConfig, TextGatesConfig
from pipelines.profiling import categorical_psi, population_stability_index

_WORDS = re.compile(r"\w+")


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
            "chars": page.quantiles(chars),
            "words": page.quantiles(n_words),
            "empty_rate": page.rate(sum(not t.strip() for t in texts[name]), n),
            "languages": dict(detected.most_common()),
            "language_sample_rows": len(sample),
            # the clean rule's own verdict (confidence threshold), not the top guess, so the
            # profile predicts what clean removes
            "foreign_rate": page.rate(
                sum(not language_ok(texts[name][j], rules.language) for j in sample), len(sample)
            ),
            "duplicate_rate": page.rate(
                exact[i].count("duplicate") + nearby[i].count("duplicate"), n
            ),
            "exact_duplicate_rate": page.rate(exact[i].count("duplicate"), n),
            "near_duplicate_rate": page.rate(nearby[i].count("duplicate"), n),
            "leak_rate": page.rate(exact[i].count("leak") + nearby[i].count("leak"), n),
            "abusive_rate": page.rate(sum(is_abusive(t, rules.abuse) for t in texts[name]), n),
            "labels": dict(sorted(label_counts.items())),
            "vocabulary_size": len(set(split_words)),
            "oov_rate": None if i == 0 else page.rate(unseen, len(split_words)),
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


def check_text_gates(report: dict[str, Any], gates: TextGatesConfig) -> list[str]:
    """One line per gate missed, naming the split, the figure and the gate's key."""
    return page.check_gates(report, gates)


def text_profile_png(report: dict[str, Any], path: Path) -> None:
    """Character-length quantiles, label balance and language mix, one panel each."""
    splits = report["splits"]
    fig, axes = page.panels(3, 15)
    page.quantile_marks(axes[0], splits, "chars")
    axes[0].set_ylabel("characters (median, p5-p95)")
    axes[0].set_title("text length")
    page.label_balance(axes[1], splits)
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
    page.save_figure(fig, path)


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
    sections = {"Drift": report["drift"]}
    page.write_profile_page(
        path, "Text profile", report, failures, page.png_tag(png), figures, sections
    )
