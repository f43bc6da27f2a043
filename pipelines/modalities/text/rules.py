"""Declarative cleaning rules for text datasets (Hugging Face `datasets.Dataset`).

The rules run in this fixed order (RULE_ORDER); each either rewrites the text or removes the
row, and a removed row is not seen by later rules:

1. normalize  ftfy repairs mojibake, then Unicode normalisation (NFKC) and whitespace collapse
2. pii        e-mails, phone numbers and Luhn-valid card numbers become <EMAIL> <PHONE> <CARD>
3. empty      removes empty, whitespace-only and missing texts
4. length     removes texts outside [min_chars, max_chars] characters (default 10-512)
5. language   removes texts an offline detector (langdetect) is confident are not allowed
6. abuse      removes texts with too many words from an abusive-word list
7. exact_duplicate  case/whitespace-insensitive repeats of an earlier row
8. near_duplicate   MinHash (datasketch) repeats of an earlier row with a few words changed

Masking comes before every removal rule, so quarantined rows carry no raw personal data;
removal rules judge the text the model would see. Duplicates are judged across splits in
order, train first: a val/test row that repeats a train row is removed as a leak
(`exact_leak`, `near_leak`), and a later repeat within a split as a duplicate.

Rules 1-6 are per row: one batched Dataset.map (num_proc workers). Rules 7-8 need one global,
ordered pass, which runs in the driver over keys and signatures computed by Dataset.map.

Nothing is dropped silently: every removed row goes to the quarantine dataset with the
`rule` that removed it and its `split`, and the counts go into the report.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache, partial
from typing import Any

import datasets
import ftfy
import numpy as np
import pyarrow.compute as pc
from datasketch import MinHash
from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory
from langdetect.lang_detect_exception import LangDetectException

from pipelines.core import rules as engine
from pipelines.io import arrow_column
from pipelines.modalities.text import dedup, pii
from pipelines.modalities.text.rules_config import (
    AbuseConfig,
    LanguageConfig,
    LengthConfig,
    NormalizeConfig,
    TextCleanConfig,
)

RULE_ORDER = (
    "normalize",
    "pii",
    "empty",
    "length",
    "language",
    "abuse",
    "exact_duplicate",
    "near_duplicate",
)
# What can appear in the quarantine's `rule` column, in order, with the config key to loosen.
REMOVAL_RULES = {
    "empty": "data.text.clean.empty",
    "length": "data.text.clean.length",
    "language": "data.text.clean.language",
    "abuse": "data.text.clean.abuse",
    "exact_duplicate": "data.text.clean.dedup.exact",
    "exact_leak": "data.text.clean.dedup.exact",
    "near_duplicate": "data.text.clean.dedup",
    "near_leak": "data.text.clean.dedup",
}
RULE_COLUMN, SPLIT_COLUMN = "rule", "split"
CLEAN_KEY = "data.text.clean"

# Working columns added by the row pass and removed before anything is returned.
_RULE, _KEY, _SIG, _CHANGED = "_tc_rule", "_tc_key", "_tc_sig", "_tc_changed"
_MASKED = {kind: f"_tc_masked_{kind}" for kind in pii.ORDER}

# Insults and profanity aimed at agents. Kept short and ours: a general profanity list
# (e.g. better-profanity's) flags words a bank's customers use innocently ("kill the app",
# "hell", "screw"), misses the insults that matter here ("idiot") and costs ~50 ms a text.
# fmt: off
ABUSIVE_WORDS = frozenset([
    "idiot", "idiots", "idiotic", "moron", "morons", "moronic", "stupid", "imbecile",
    "imbeciles", "clown", "clowns", "bastard", "bastards", "bullshit", "shit", "shitty", "crap",
    "crappy", "damn", "fuck", "fucking", "fucked", "fucker", "f*ck", "f**k", "wtf", "scum",
    "jerk", "jerks", "dumb", "dumbass", "asshole", "assholes", "dickhead", "cunt", "retard",
    "retards", "twat", "wanker", "wankers", "piss", "brainless",
])
# fmt: on
_ABUSE_TOKEN = re.compile(r"[a-z*]+")
_MASK_TOKEN = re.compile(r"<[A-Z]+>")
_DIGITS = re.compile(r"\d+")
_SPACES = re.compile(r"\s+")


def _text_problem(ds: datasets.Dataset, column: str) -> str | None:
    feature = ds.features[column]
    dtype = getattr(feature, "dtype", type(feature).__name__)
    if dtype not in ("string", "large_string", "null"):
        return f"holds {dtype} values; expected strings"
    if len(ds) == 0 or dtype == "null" or not _has_text(ds, column):
        return (
            f"is entirely empty ({len(ds)} rows, none with text); expected at least one "
            "non-blank string"
        )
    return None


TEXT_COLUMN = engine.ContentColumn("text", "a column of strings", _text_problem)
validate_text_columns = TEXT_COLUMN.validate


def _has_text(ds: datasets.Dataset, column: str) -> bool:
    lengths = pc.utf8_length(pc.utf8_trim_whitespace(arrow_column(ds, column)))
    longest = pc.max(lengths).as_py()
    return longest is not None and longest > 0


class TextRules(engine.RuleSet, verdict=_RULE, exact_key=_KEY):
    """Rules 1-6 in one batched row pass, then exact and MinHash near duplicates."""

    removal_rules = REMOVAL_RULES
    content = TEXT_COLUMN
    reserved = (RULE_COLUMN, SPLIT_COLUMN)
    cfg: TextCleanConfig

    def row_pass(self, ds: datasets.Dataset, name: str) -> datasets.Dataset:
        return _row_pass(ds, name, self.cfg, self.num_proc)

    def near(self, states: list[engine.SplitVerdicts]) -> list[list[str]] | None:
        return _near_duplicates(states, self.cfg, self.num_proc) if self.cfg.dedup.near else None

    def figures(self, state: engine.SplitVerdicts) -> dict[str, Any]:
        """Texts the normalize rule changed, and PII masked per kind."""
        return {
            "normalized": engine.column_sum(state.work, _CHANGED),
            "masked": {
                kind: engine.column_sum(state.work, _MASKED[kind]) for kind in self.cfg.pii.kinds
            },
        }

    def kept(self, state: engine.SplitVerdicts) -> datasets.Dataset:
        return _kept(state)

    def removed(self, state: engine.SplitVerdicts) -> datasets.Dataset:
        return _removed(state)


def clean_text_splits(
    splits: dict[str, datasets.Dataset], cfg: TextCleanConfig, num_proc: int | None = None
) -> engine.Cleaned:
    """run_rules with TextRules. The report has, per split, besides rows and removals:
    normalized (texts the normalize rule changed) and masked (per PII kind)."""
    return engine.run_rules(splits, TextRules(cfg, num_proc))


# --- rules 1-6: one row-wise pass ------------------------------------------------------------


def _row_pass(
    ds: datasets.Dataset, name: str, cfg: TextCleanConfig, num_proc: int | None
) -> datasets.Dataset:
    if cfg.language.enabled:
        _detector_factory(cfg.language.seed)  # loaded before the fork: workers inherit it
    return ds.map(
        partial(_row_batch, cfg=cfg),
        batched=True,
        num_proc=num_proc,
        load_from_cache_file=False,
        desc=f"text_clean {name}",
    )


def _row_batch(batch: dict[str, list], cfg: TextCleanConfig) -> dict[str, list]:
    texts, rules, keys, changed = [], [], [], []
    masked: dict[str, list[int]] = {kind: [] for kind in pii.ORDER}
    for raw in batch[cfg.text_column]:
        text = raw or ""
        normalized = normalize(text, cfg.normalize) if cfg.normalize.enabled else text
        text, counts = _mask(normalized, cfg)
        texts.append(text)
        rules.append(first_removal(text, cfg))
        keys.append(dedup.exact_key(text))
        changed.append(normalized != (raw or ""))
        for kind in pii.ORDER:
            masked[kind].append(counts.get(kind, 0))
    return {
        cfg.text_column: texts,
        _RULE: rules,
        _KEY: keys,
        _CHANGED: changed,
        **{_MASKED[kind]: values for kind, values in masked.items()},
    }


def normalize(text: str, cfg: NormalizeConfig) -> str:
    """Mojibake repair (ftfy also straightens curly quotes), Unicode form, single spaces."""
    if cfg.fix_mojibake:
        text = ftfy.fix_text(text, normalization=cfg.form)
    else:
        text = unicodedata.normalize(cfg.form, text)
    if cfg.collapse_whitespace:
        text = _SPACES.sub(" ", text).strip()
    return text


def _mask(text: str, cfg: TextCleanConfig) -> tuple[str, dict[str, int]]:
    if not cfg.pii.enabled:
        return text, {}
    tokens = {kind: cfg.pii.token(kind) for kind in pii.ORDER}
    return pii.mask(text, cfg.pii.kinds, tokens)


def first_removal(text: str, cfg: TextCleanConfig) -> str:
    """The first row rule (empty, length, language, abuse) that removes the text, or ""."""
    if cfg.empty.enabled and not text.strip():
        return "empty"
    if cfg.length.enabled and not _length_ok(text, cfg.length):
        return "length"
    if cfg.language.enabled and not language_ok(text, cfg.language):
        return "language"
    if cfg.abuse.enabled and is_abusive(text, cfg.abuse):
        return "abuse"
    return ""


def _length_ok(text: str, cfg: LengthConfig) -> bool:
    return cfg.min_chars <= len(text) <= cfg.max_chars


_DETECTORS: dict[int, DetectorFactory] = {}


def _detector_factory(seed: int) -> DetectorFactory:
    """langdetect's profiles, loaded once per process (~0.5 s) with our own seed, so the
    global langdetect factory is never touched."""
    factory = _DETECTORS.get(seed)
    if factory is None:
        factory = DetectorFactory()
        factory.load_profile(PROFILES_DIRECTORY)
        factory.set_seed(seed)
        _DETECTORS[seed] = factory
    return factory


def language_ok(text: str, cfg: LanguageConfig) -> bool:
    """False only when the detector is confident the text is in no allowed language."""
    words = _DIGITS.sub(" ", _MASK_TOKEN.sub(" ", text))  # mask tokens and numbers say nothing
    if sum(ch.isalpha() for ch in words) < cfg.min_chars:
        return True  # too little text to judge: keeping it is the cheaper mistake
    detector = _detector_factory(cfg.seed).create()
    detector.append(words)
    try:
        guesses = detector.get_probabilities()
    except LangDetectException:
        return True
    foreign = sum(g.prob for g in guesses if g.lang not in cfg.allowed)
    return foreign < cfg.min_confidence


def detect_language(text: str, cfg: LanguageConfig) -> str:
    """The detector's most probable language, or "?" for a text with too few letters to
    judge (which language_ok keeps); the profile's language mix counts these."""
    words = _DIGITS.sub(" ", _MASK_TOKEN.sub(" ", text))
    if sum(ch.isalpha() for ch in words) < cfg.min_chars:
        return "?"
    detector = _detector_factory(cfg.seed).create()
    detector.append(words)
    try:
        return str(detector.detect())
    except LangDetectException:
        return "?"


@cache
def _abusive_words(extra_words: tuple[str, ...]) -> frozenset[str]:
    return ABUSIVE_WORDS | {w.casefold() for w in extra_words}


def is_abusive(text: str, cfg: AbuseConfig) -> bool:
    tokens = _ABUSE_TOKEN.findall(_MASK_TOKEN.sub(" ", text).casefold())
    if not tokens:
        return False
    words = _abusive_words(tuple(cfg.extra_words))
    hits = sum(token in words for token in tokens)
    return hits >= cfg.min_count or (hits > 0 and hits / len(tokens) >= cfg.min_share)


# --- rules 7-8: duplicates across rows and splits ----------------------------------------------


def _near_duplicates(
    states: list[engine.SplitVerdicts], cfg: TextCleanConfig, num_proc: int | None
) -> list[list[str]]:
    template = dedup.minhash_template(cfg.dedup.num_perm, cfg.dedup.seed)
    signatures = [_signatures(s, cfg, template, num_proc) for s in states]
    active = [s.active() for s in states]
    return dedup.near_pass(signatures, active, cfg.dedup.threshold, cfg.dedup.seed)


def _signatures(
    state: engine.SplitVerdicts, cfg: TextCleanConfig, template: MinHash, num_proc: int | None
) -> np.ndarray:
    """(rows, num_perm) MinHash signatures; rows already removed get zeros (never compared)."""
    with_active = state.work.select_columns([cfg.text_column]).add_column(_RULE, state.rules)
    signed = with_active.map(
        partial(_signature_batch, cfg=cfg, template=template),
        batched=True,
        num_proc=num_proc,
        remove_columns=with_active.column_names,
        load_from_cache_file=False,
        desc=f"minhash {state.name}",
    )
    values = signed.with_format("numpy")[_SIG][:]  # one Arrow read, not one per row
    return np.asarray(values, dtype=dedup.SIGNATURE_DTYPE).reshape(len(signed), cfg.dedup.num_perm)


def _signature_batch(batch: dict[str, list], cfg: TextCleanConfig, template: MinHash) -> dict:
    zeros = np.zeros(cfg.dedup.num_perm, dtype=dedup.SIGNATURE_DTYPE)
    sigs = [
        dedup.signature(text, template, cfg.dedup.shingle_size) if rule == "" else zeros
        for text, rule in zip(batch[cfg.text_column], batch[_RULE], strict=True)
    ]
    return {_SIG: sigs}


# --- outputs -----------------------------------------------------------------------------------


def _internal_columns(ds: datasets.Dataset) -> list[str]:
    return [c for c in ds.column_names if c.startswith("_tc_")]


def _kept(state: engine.SplitVerdicts) -> datasets.Dataset:
    rows = state.kept_rows()
    return state.work.select(rows).remove_columns(_internal_columns(state.work)).flatten_indices()


def _removed(state: engine.SplitVerdicts) -> datasets.Dataset:
    rows = state.removed_rows()
    part = state.work.select(rows).remove_columns(_internal_columns(state.work))
    string = datasets.Value("string")
    part = part.add_column(RULE_COLUMN, [state.rules[i] for i in rows], feature=string)
    return part.add_column(SPLIT_COLUMN, [state.name] * len(rows), feature=string).flatten_indices()
