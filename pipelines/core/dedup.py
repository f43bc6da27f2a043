"""The ordered duplicate pass every modality shares: splits are visited in order (train
first), and a row whose key an earlier active row already had is a "duplicate" (same split)
or a "leak" (an earlier split). The keys are the modality's (normalised text, pixel hash).
"""

from __future__ import annotations

from collections.abc import Sequence


def exact_pass(keys: Sequence[Sequence[str]], active: Sequence[Sequence[bool]]) -> list[list[str]]:
    """Per split, per row: "" (first occurrence or inactive), "duplicate" or "leak"."""
    first_split: dict[str, int] = {}
    verdicts: list[list[str]] = []
    for split_ix, (split_keys, split_active) in enumerate(zip(keys, active, strict=True)):
        out = []
        for key, is_active in zip(split_keys, split_active, strict=True):
            seen = first_split.get(key) if is_active else None
            if not is_active:
                out.append("")
            elif seen is None:
                first_split[key] = split_ix
                out.append("")
            else:
                out.append("duplicate" if seen == split_ix else "leak")
        verdicts.append(out)
    return verdicts
