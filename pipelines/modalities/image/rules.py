"""Declarative cleaning rules for image datasets (Hugging Face `datasets.Dataset` with a
`datasets.Image` column), the image counterpart of pipelines/modalities/text/rules.py.

The rules run in this fixed order (RULE_ORDER); each either rewrites the image or removes the
row, and a removed row is not seen by later rules:

1. unreadable  bytes Pillow cannot open, verify or fully decode (truncated, corrupt, not an
               image, a decompression bomb): removed
2. mode        other modes than data.image.clean.mode.target: converted, or removed by policy
3. size        resized to height x width (centre crop or pad); images whose shorter side is
               below min_side are removed (upscaling invents detail)
4. exposure    mean brightness outside [min_brightness, max_brightness]: removed (optional)
5. blur        variance of the Laplacian below min_laplacian_var: removed (optional)
6. exact_duplicate   the same normalised pixels as an earlier image
7. near_duplicate    a perceptual hash within max_distance bits of an earlier image's

Exposure comes before blur because a black frame has no edges either: it is removed for what
it is. Exposure, blur and the hashes are measured on the normalised image (target mode and
size), so one threshold holds whatever size an image came in. Duplicates are judged across
splits in order, train first: a val/test image repeating a train image is removed as a leak
(`exact_leak`, `near_leak`), a later repeat within a split as a duplicate.

Rules 1-5 and the hashes are per row: one batched Dataset.map (num_proc workers) over the
image column alone. Rules 6-7 are one ordered pass in the driver over the hashes.

Nothing is dropped silently: every removed row goes to the quarantine dataset with its
original bytes (embedded, even when the input pointed at files), the `rule` that removed it
and its `split`; the counts go into the report. Kept rows leave with the normalised image.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import datasets
import numpy as np

from pipelines.core import rules as engine
from pipelines.io import arrow_column
from pipelines.modalities.image.analysis import Facts, analyse, encode_png, raw_bytes
from pipelines.modalities.image.config import CLEAN_KEY, ImageCleanConfig
from pipelines.modalities.image.dedup import hamming_pass

RULE_ORDER = (
    "unreadable",
    "mode",
    "size",
    "exposure",
    "blur",
    "exact_duplicate",
    "near_duplicate",
)
# What can appear in the quarantine's `rule` column, in order, with the config key to loosen.
REMOVAL_RULES = {
    "unreadable": f"{CLEAN_KEY}.readable",
    "mode": f"{CLEAN_KEY}.mode.policy",
    "size": f"{CLEAN_KEY}.size.min_side",
    "exposure": f"{CLEAN_KEY}.exposure",
    "blur": f"{CLEAN_KEY}.blur.min_laplacian_var",
    "exact_duplicate": f"{CLEAN_KEY}.dedup.exact",
    "exact_leak": f"{CLEAN_KEY}.dedup.exact",
    "near_duplicate": f"{CLEAN_KEY}.dedup.max_distance",
    "near_leak": f"{CLEAN_KEY}.dedup.max_distance",
}
RULE_COLUMN, SPLIT_COLUMN, REASON_COLUMN = "rule", "split", "reason"
# the quarantine's reason for a duplicate (the row rules give their own, with the figures)
DUPLICATE_REASONS = {
    "exact_duplicate": "the same pixels as an earlier image of its split",
    "exact_leak": "the same pixels as a train image",
    "near_duplicate": "perceptual hash within {d} bits of an earlier image of its split",
    "near_leak": "perceptual hash within {d} bits of a train image",
}

# Working columns of the row pass, removed before anything is returned.
_RULE, _PNG, _KEY, _PHASH = "_ic_rule", "_ic_png", "_ic_key", "_ic_phash"
_REASON = "_ic_reason"
_CONVERTED, _RESIZED = "_ic_converted", "_ic_resized"
_WORK_FEATURES = datasets.Features(
    {
        _RULE: datasets.Value("string"),
        _REASON: datasets.Value("string"),
        _PNG: datasets.Value("binary"),
        _KEY: datasets.Value("string"),
        _PHASH: datasets.Value("binary"),
        _CONVERTED: datasets.Value("bool"),
        _RESIZED: datasets.Value("bool"),
    }
)
_BINARY = ("binary", "large_binary")


def _image_problem(ds: datasets.Dataset, column: str) -> str | None:
    feature = ds.features[column]
    if not isinstance(feature, datasets.Image) and getattr(feature, "dtype", None) not in _BINARY:
        kind = getattr(feature, "dtype", type(feature).__name__)
        return f"holds {kind} values; expected a datasets.Image column (or encoded image bytes)"
    if len(ds) == 0:
        return "has no rows; expected at least one image"
    return None


IMAGE_COLUMN = engine.ContentColumn("image", "a datasets.Image column", _image_problem)
validate_image_columns = IMAGE_COLUMN.validate


def undecoded(ds: datasets.Dataset, column: str) -> datasets.Dataset:
    """The dataset with its image column as {"bytes", "path"} cells: nothing is decoded on
    read, so an unreadable image is a row to judge, not an exception."""
    if isinstance(ds.features[column], datasets.Image):
        return ds.cast_column(column, datasets.Image(decode=False))
    return ds


class ImageRules(engine.RuleSet, verdict=_RULE, exact_key=_KEY):
    """Rules 1-5 in one row pass over undecoded images, then exact and perceptual duplicates;
    kept rows carry the normalised image, removed ones the original bytes and a reason."""

    removal_rules = REMOVAL_RULES
    content = IMAGE_COLUMN
    reserved = (RULE_COLUMN, SPLIT_COLUMN, *_WORK_FEATURES)
    cfg: ImageCleanConfig

    def row_pass(self, ds: datasets.Dataset, name: str) -> datasets.Dataset:
        return _row_pass(ds, name, self.cfg, self.num_proc)

    def near(self, states: list[engine.SplitVerdicts]) -> list[list[str]] | None:
        if not self.cfg.dedup.perceptual:
            return None
        hashes = [_hash_matrix(s.work, self.cfg) for s in states]
        return hamming_pass(hashes, [s.active() for s in states], self.cfg.dedup.max_distance)

    def figures(self, state: engine.SplitVerdicts) -> dict[str, Any]:
        """Images the mode rule converted and the size rule resized."""
        return {
            "converted": engine.column_sum(state.work, _CONVERTED),
            "resized": engine.column_sum(state.work, _RESIZED),
        }

    def kept(self, state: engine.SplitVerdicts) -> datasets.Dataset:
        return _kept(state, self.cfg)

    def removed(self, state: engine.SplitVerdicts) -> datasets.Dataset:
        return _removed(state, self.cfg)


def clean_image_splits(
    splits: dict[str, datasets.Dataset], cfg: ImageCleanConfig, num_proc: int | None = None
) -> engine.Cleaned:
    """run_rules with ImageRules. The report has, per split, besides rows and removals:
    converted (images the mode rule converted) and resized."""
    return engine.run_rules(splits, ImageRules(cfg, num_proc))


# --- rules 1-5: one row-wise pass --------------------------------------------------------------


def _row_pass(
    ds: datasets.Dataset, name: str, cfg: ImageCleanConfig, num_proc: int | None
) -> datasets.Dataset:
    """The input rows with the working columns beside them. Only the image column goes through
    map; the rest is joined back column-wise, so the other columns are never rewritten."""
    raw = undecoded(ds, cfg.image_column)
    facts = raw.select_columns([cfg.image_column]).map(
        partial(_row_batch, cfg=cfg),
        batched=True,
        batch_size=200,
        num_proc=num_proc,
        remove_columns=[cfg.image_column],
        features=_WORK_FEATURES,
        load_from_cache_file=False,
        desc=f"image_clean {name}",
    )
    return datasets.concatenate_datasets([raw, facts], axis=1)


def _row_batch(batch: dict[str, list], cfg: ImageCleanConfig) -> dict[str, list]:
    out: dict[str, list] = {column: [] for column in _WORK_FEATURES}
    for cell in batch[cfg.image_column]:
        facts = analyse(raw_bytes(cell), cfg)
        rule, reason = removal(facts, cfg)
        keep_going = rule == ""  # removed rows need neither the new image nor the hashes
        out[_RULE].append(rule)
        out[_REASON].append(reason)
        out[_PNG].append(encode_png(facts.image) if keep_going and facts.image else b"")
        out[_KEY].append(facts.content_hash if keep_going else "")
        out[_PHASH].append(facts.perceptual_hash if keep_going else b"")
        out[_CONVERTED].append(keep_going and facts.converted)
        out[_RESIZED].append(keep_going and facts.resized)
    return out


def first_removal(facts: Facts, cfg: ImageCleanConfig) -> str:
    """The first row rule (unreadable, mode, size, exposure, blur) that removes the image,
    or ""."""
    return removal(facts, cfg)[0]


def removal(facts: Facts, cfg: ImageCleanConfig) -> tuple[str, str]:
    """(rule, reason) of the first row rule that removes the image, or ("", ""). The reason
    says what was found against what was expected, for the quarantine's reviewer."""
    if facts.error:
        return "unreadable", facts.error
    if facts.converted and cfg.mode.policy == "quarantine":
        return "mode", f"mode {facts.mode}; expected {cfg.mode.target} (policy: quarantine)"
    if facts.too_small:
        return "size", (
            f"{facts.width}x{facts.height}: shorter side below min_side {cfg.size.min_side}"
        )
    exposure = cfg.exposure
    if exposure.enabled and not (
        exposure.min_brightness <= facts.brightness <= exposure.max_brightness
    ):
        return "exposure", (
            f"mean brightness {facts.brightness:.1f}; expected {exposure.min_brightness:g} to "
            f"{exposure.max_brightness:g}"
        )
    if cfg.blur.enabled and facts.laplacian_var < cfg.blur.min_laplacian_var:
        return "blur", (
            f"variance of the Laplacian {facts.laplacian_var:.1f} < {cfg.blur.min_laplacian_var:g}"
        )
    return "", ""


# --- rules 6-7: duplicates across rows and splits ------------------------------------------------


def _hash_matrix(work: datasets.Dataset, cfg: ImageCleanConfig) -> np.ndarray:
    """(rows, bytes) packed perceptual hashes; rows already removed get zeros (never compared:
    the pass only reads active rows)."""
    width = (cfg.dedup.hash_size**2 + 7) // 8
    cells = arrow_column(work, _PHASH).to_pylist()
    zeros = b"\0" * width
    return np.frombuffer(b"".join(c or zeros for c in cells), dtype=np.uint8).reshape(-1, width)


# --- outputs -------------------------------------------------------------------------------------


def _kept(state: engine.SplitVerdicts, cfg: ImageCleanConfig) -> datasets.Dataset:
    """Kept rows with the normalised image in place of the original, as a datasets.Image."""
    columns = [c for c in state.work.column_names if c not in _WORK_FEATURES]
    rows = state.kept_rows()
    part = state.work.select(rows).remove_columns(cfg.image_column)
    part = part.rename_column(_PNG, cfg.image_column)
    part = part.cast_column(cfg.image_column, datasets.Image())
    return part.select_columns(columns).flatten_indices()


def _removed(state: engine.SplitVerdicts, cfg: ImageCleanConfig) -> datasets.Dataset:
    """Removed rows as they came (image undecoded: some cannot be), plus rule, reason and
    split."""
    rows = state.removed_rows()
    row_reasons = arrow_column(state.work, _REASON).to_pylist()
    distance = cfg.dedup.max_distance
    reasons = {
        i: row_reasons[i] or DUPLICATE_REASONS[state.rules[i]].format(d=distance) for i in rows
    }
    part = state.work.select(rows).remove_columns(list(_WORK_FEATURES))
    string = datasets.Value("string")
    features = datasets.Features(
        {**part.features, RULE_COLUMN: string, REASON_COLUMN: string, SPLIT_COLUMN: string}
    )
    if not rows:  # add_column on a 0-row column-joined table fails inside datasets
        return datasets.Dataset.from_dict({c: [] for c in features}, features=features)
    part = part.map(
        partial(_embed, column=cfg.image_column),
        batched=True,
        features=part.features,
        load_from_cache_file=False,
        desc=f"quarantine {state.name}",
    )
    part = part.add_column(RULE_COLUMN, [state.rules[i] for i in rows], feature=string)
    part = part.add_column(REASON_COLUMN, [reasons[i] for i in rows], feature=string)
    return part.add_column(SPLIT_COLUMN, [state.name] * len(rows), feature=string)


def _embed(batch: dict[str, list], column: str) -> dict[str, list]:
    """Cells that point at files get the file's bytes: the quarantine outlives the folder."""
    cells = []
    for cell in batch[column]:
        if isinstance(cell, dict) and not cell.get("bytes"):
            cell = {"bytes": raw_bytes(cell), "path": cell.get("path")}
        cells.append(cell)
    return {column: cells}
