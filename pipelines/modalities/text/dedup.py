"""Duplicate detection across a sequence of splits: exact keys and MinHash near-duplicates.

Signatures are computed row-wise (inside Dataset.map, in parallel); deciding what is a
duplicate is a single ordered pass in the driver, because "later copy of an earlier row" is a
global question. Splits are visited in order (train first), so a val/test row that repeats a
train row is the one removed: a leak, reported apart from a plain duplicate.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np
from datasketch import LeanMinHash, MinHash, MinHashLSH

_WORD = re.compile(r"\w+")
_SPACE = re.compile(r"\s+")
# datasketch >= 2.0 default: uint32 hash values; LeanMinHash needs to be told.
SCHEME = "affine32"
SIGNATURE_DTYPE = np.uint32
# LSH banding misses pairs just above its threshold; proposing candidates from a lower one and
# letting the signature comparison decide keeps those (a few more comparisons per row).
CANDIDATE_MARGIN = 0.1


def exact_key(text: str) -> str:
    """Case- and whitespace-insensitive identity of a text."""
    canonical = _SPACE.sub(" ", text.casefold()).strip()
    return hashlib.blake2b(canonical.encode("utf-8"), digest_size=16).hexdigest()


def shingles(text: str, size: int) -> list[bytes]:
    """Word n-grams of `size` words; a text shorter than that is one shingle."""
    words = _WORD.findall(text.casefold())
    if len(words) <= size:
        return [" ".join(words).encode("utf-8")]
    return [" ".join(words[i : i + size]).encode("utf-8") for i in range(len(words) - size + 1)]


def minhash_template(num_perm: int, seed: int) -> MinHash:
    """Built once: every signature reuses its permutations (they are the costly part)."""
    return MinHash(num_perm=num_perm, seed=seed, scheme=SCHEME)


def signature(text: str, template: MinHash, shingle_size: int) -> np.ndarray:
    m = MinHash(
        num_perm=len(template.hashvalues),
        seed=template.seed,
        permutations=template.permutations,
        scheme=SCHEME,
    )
    m.update_batch(shingles(text, shingle_size))
    return m.hashvalues.astype(SIGNATURE_DTYPE)


def near_pass(
    signatures: Sequence[np.ndarray],
    active: Sequence[Sequence[bool]],
    threshold: float,
    seed: int,
) -> list[list[str]]:
    """Like pipelines.core.dedup.exact_pass, for rows whose estimated Jaccard similarity to a
    kept earlier row is >= threshold. LSH proposes candidates (from a lower threshold); the
    signature comparison decides, so the verdict does not depend on the order LSH returns
    candidates in."""
    num_perm = signatures[0].shape[1] if len(signatures) else 0
    lsh = MinHashLSH(threshold=max(0.05, threshold - CANDIDATE_MARGIN), num_perm=num_perm)
    kept: dict[tuple[int, int], np.ndarray] = {}
    verdicts: list[list[str]] = []
    for split_ix, (sigs, split_active) in enumerate(zip(signatures, active, strict=True)):
        out = []
        for row, is_active in enumerate(split_active):
            if not is_active:
                out.append("")
                continue
            sig = sigs[row]
            probe = LeanMinHash(seed=seed, hashvalues=sig, scheme=SCHEME)
            matches = [
                key for key in lsh.query(probe) if float(np.mean(kept[key] == sig)) >= threshold
            ]
            if matches:
                leak = any(match_split != split_ix for match_split, _ in matches)
                out.append("leak" if leak else "duplicate")
                continue
            key = (split_ix, row)
            lsh.insert(key, probe, check_duplication=False)
            kept[key] = sig
            out.append("")
        verdicts.append(out)
    return verdicts
