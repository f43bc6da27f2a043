"""Text augmentation as a declared policy: rare intents are topped up, on the train split
only, with copies of their own tickets changed by token-level operations (EDA, Wei & Zou
2019): synonym replacement from an offline lexicon, random insertion of a synonym, random
swap and random deletion. Back-translation (data.text.augment.back_translation: out of the
language by one local `transformers` model and back by another, back_translation.py) makes a
declared share of those copies; every row says how it was made (column `augmented_by`: null
for an original, `eda` or `back_translation`).

The four operations are written here rather than taken from nlpaug: nlpaug's synonym source
is WordNet through NLTK (its corpus is a download, which this machine cannot make), and its
augmenters draw from Python's global `random`, so results would depend on process and
worker scheduling under `num_proc`. Here every generated ticket has its own generator seeded
from (seed, source row, copy), so the augmented split is identical with any `num_proc`.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset
from omegaconf import OmegaConf

from pipelines.core.augment import (
    PlannedCopy,
    append_generated,
    class_targets,
    mark_originals,
    top_up_plan,
)
from pipelines.errors import PipelineError
from pipelines.modalities.text import COLUMNS
from pipelines.modalities.text.rules_config import AUGMENT_KEY as KEY
from pipelines.modalities.text.rules_config import (
    BackTranslationConfig,
    TextAugmentConfig,
)

DEFAULT_LEXICON = Path(__file__).parent / "data" / "lexicon.yaml"
AUGMENTED_BY = "augmented_by"  # column: how a row was made (null: an original row)
EDA, BACK_TRANSLATION = "eda", "back_translation"


@cache
def load_lexicon(path: str) -> dict[str, tuple[str, ...]]:
    """word or phrase -> the other members of its synonym set (lower case)."""
    file = Path(path)
    try:
        sets = OmegaConf.to_container(OmegaConf.load(file))["synonyms"]  # type: ignore[index]
    except Exception as error:  # unreadable, not YAML, or no 'synonyms' key: one message
        raise PipelineError(
            f"{file}: config key '{KEY}.lexicon' must name a YAML file with a 'synonyms' list "
            f"of word lists ({error})"
        ) from error
    synonyms: dict[str, set[str]] = {}
    for members in sets:
        if not isinstance(members, list) or len(members) < 2:
            raise PipelineError(
                f"{file}: synonym set {members!r}: expected a list of two or more words"
            )
        lowered = [str(m).lower() for m in members]
        for word in lowered:
            synonyms.setdefault(word, set()).update(w for w in lowered if w != word)
    return {word: tuple(sorted(others)) for word, others in synonyms.items()}


_WORD = re.compile(r"\S+")


def eda(
    text: str, rng: np.random.Generator, cfg: TextAugmentConfig, lexicon: dict[str, tuple[str, ...]]
) -> str:
    """One EDA variant of `text`: synonym replacement, random insertion of a synonym, random
    swap and random deletion, each touching max(1, rate x words) words when its rate is above
    zero. Punctuation stays attached to its word, so "card," is looked up as "card"."""
    words = _WORD.findall(text)
    if not words:
        return text

    def count(rate: float) -> int:
        return max(1, int(rate * len(words))) if rate > 0 else 0

    def bare(word: str) -> str:
        return word.strip(".,!?;:").lower()

    replaceable = [i for i, w in enumerate(words) if bare(w) in lexicon]
    for i in rng.permutation(replaceable)[: count(cfg.synonym_rate)]:
        options = lexicon[bare(words[i])]
        trailing = words[i][len(words[i].rstrip(".,!?;:")) :]
        words[i] = options[rng.integers(len(options))] + trailing
    # candidates fixed before inserting: an inserted synonym must not seed the next insertion
    candidates = [bare(w) for w in words if bare(w) in lexicon]
    for _ in range(count(cfg.insert_rate) if candidates else 0):
        options = lexicon[candidates[rng.integers(len(candidates))]]
        words.insert(int(rng.integers(len(words) + 1)), options[rng.integers(len(options))])
    for _ in range(count(cfg.swap_rate) if len(words) > 1 else 0):
        a, b = rng.choice(len(words), size=2, replace=False)
        words[a], words[b] = words[b], words[a]
    if len(words) > 1 and cfg.delete_rate > 0:
        keep = rng.random(len(words)) >= cfg.delete_rate
        keep[rng.integers(len(words))] = True  # never delete every word
        words = [w for w, k in zip(words, keep, strict=True) if k]
    return " ".join(words)


def augment_train(
    train: Dataset, cfg: TextAugmentConfig, seed: int, num_proc: int | None = None
) -> tuple[Dataset, dict[str, Any]]:
    """The train split (ingest's columns) with generated tickets appended (columns AUGMENTED,
    SOURCE_ID and AUGMENTED_BY say which, from where and how), and a report of rows added per
    class and per method."""
    from pipelines.modalities.text.back_translation import require_translation_models

    text_column, label_column = COLUMNS
    if cfg.back_translation.enabled:
        require_translation_models(cfg.back_translation)
    original = mark_originals(train, label_column)
    unchanged = {"added": {}, "added_by": {}, "rows_before": len(train), "rows_after": len(train)}
    if not cfg.enabled:
        return _with_methods(original, []), unchanged
    # `[:]`: datasets 5 returns a lazy column that reads row by row when iterated
    labels = train[label_column][:]
    plan = top_up_plan(labels, class_targets(labels, cfg.min_class_share), seed)
    if not plan:
        return _with_methods(original, []), unchanged
    translated = _back_translations(train, plan, cfg.back_translation, seed)
    lexicon = load_lexicon(cfg.lexicon or str(DEFAULT_LEXICON))

    def make_ticket(text: str, copy: PlannedCopy) -> str:
        if copy.position in translated:
            return translated[copy.position]
        # one generator per generated ticket: the same ticket whatever num_proc does
        return eda(text, np.random.default_rng([seed, copy.source, copy.position]), cfg, lexicon)

    combined, added = append_generated(
        original, plan, make_ticket, text_column, label_column, num_proc=num_proc
    )
    methods = [BACK_TRANSLATION if p in translated else EDA for p in range(len(plan))]
    report = {
        "added": added,
        "added_by": {m: methods.count(m) for m in (EDA, BACK_TRANSLATION) if m in methods},
        "rows_before": len(train),
        "rows_after": len(combined),
    }
    return _with_methods(combined, methods), report


def _back_translations(
    train: Dataset, plan: list[int], cfg: BackTranslationConfig, seed: int
) -> dict[int, str]:
    """Plan position -> the back-translation of its source ticket, for a seeded cfg.share of
    the positions (all in one batched pass per model). A translation that came out empty is
    left out: that copy is made by EDA instead."""
    if not cfg.enabled:
        return {}
    from pipelines.modalities.text.back_translation import back_translate

    text_column = COLUMNS[0]
    chosen = np.flatnonzero(np.random.default_rng([seed, 1]).random(len(plan)) < cfg.share)
    sources = train.select([plan[p] for p in chosen])[text_column][:]
    outputs = back_translate(list(sources), cfg, seed)
    return {int(p): text for p, text in zip(chosen, outputs, strict=True) if text}


def _with_methods(combined: Dataset, methods: list[str]) -> Dataset:
    """AUGMENTED_BY on every row: null for the originals, then each generated row's method."""
    from datasets import Value

    originals = len(combined) - len(methods)
    return combined.add_column(AUGMENTED_BY, [None] * originals + methods, feature=Value("string"))
