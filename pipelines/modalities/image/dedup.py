"""Duplicate verdicts for images across a sequence of splits, train first: exact (same
normalised pixels) and perceptual (hashes within a Hamming distance).

Hashes are computed row-wise inside Dataset.map; deciding what is a duplicate is one ordered
pass in the driver ("a later copy of an earlier image" is a global question), as for texts. A
val/test image matching a kept train image is a leak, reported apart from a plain duplicate.
The exact pass is pipelines/core/dedup.py: it only compares keys.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
_BLOCK = 64  # rows compared against the kept set in one operation (64 x kept x 8 bytes)


def hamming_distances(probes: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """(len(probes), len(kept)) bit distances between packed hashes (uint8 rows)."""
    if len(probes) == 0 or len(kept) == 0:
        return np.zeros((len(probes), len(kept)), dtype=np.int32)
    if hasattr(np, "bitwise_count") and probes.shape[1] % 8 == 0:  # numpy >= 2: 64 bits a step
        words = (
            np.ascontiguousarray(probes).view(np.uint64),
            np.ascontiguousarray(kept).view(np.uint64),
        )
        xor = words[0][:, None, :] ^ words[1][None, :, :]
        return np.bitwise_count(xor).sum(axis=2, dtype=np.int32)
    xor = probes[:, None, :] ^ kept[None, :, :]
    return _POPCOUNT[xor].sum(axis=2, dtype=np.int32)


def hamming_pass(
    hashes: Sequence[np.ndarray], active: Sequence[Sequence[bool]], max_distance: int
) -> list[list[str]]:
    """Per split, per row: "" (kept or inactive), "duplicate" (within max_distance bits of a
    kept image of its own split) or "leak" (of a kept image of an earlier split).

    Brute force over the kept set, a block of rows at a time: exact for any threshold, and at
    64-bit hashes about n^2/2 byte-XORs (20,000 images: ~2e8, a few seconds). Beyond ~10^5
    images a multi-index (pigeonhole) bucket scheme would be the next step."""
    n_total = sum(len(h) for h in hashes)
    width = hashes[0].shape[1] if hashes else 0
    kept = np.zeros((n_total, width), dtype=np.uint8)
    kept_split = np.zeros(n_total, dtype=np.int32)
    n_kept = 0
    verdicts: list[list[str]] = []
    for split_ix, (split_hashes, split_active) in enumerate(zip(hashes, active, strict=True)):
        out = [""] * len(split_active)
        rows = np.flatnonzero(np.asarray(split_active, dtype=bool))
        for start in range(0, len(rows), _BLOCK):
            block = rows[start : start + _BLOCK]
            before = n_kept  # the kept set as the block starts: one matrix for all its rows
            earlier = hamming_distances(split_hashes[block], kept[:before])
            for j, row in enumerate(block):
                near = np.flatnonzero(earlier[j] <= max_distance)
                within = hamming_distances(split_hashes[row : row + 1], kept[before:n_kept])[0]
                near_new = before + np.flatnonzero(within <= max_distance)
                matches = kept_split[np.concatenate([near, near_new])]
                if len(matches):
                    out[row] = "leak" if np.any(matches != split_ix) else "duplicate"
                    continue
                kept[n_kept] = split_hashes[row]
                kept_split[n_kept] = split_ix
                n_kept += 1
        verdicts.append(out)
    return verdicts
