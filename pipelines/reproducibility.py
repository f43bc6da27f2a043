"""What a rerun of the committed pipeline promises, checked after `make run`.

The contract: the same code, config and seed on the same kind of CPU with the same thread
count write byte-identical metrics files and `dvc.lock`. Across CPUs the figures agree within
TOLERANCE, not to the byte: ONNX Runtime and PyTorch pick their kernels by instruction set
(AVX2, AVX-512, VNNI), which round differently; the ranking metrics then move in the fifth or
sixth decimal, while a threshold-based figure can move more, because a fine-tune that sees
other roundings (QAT) ends a little elsewhere and its validation threshold with it (observed:
the QAT row's F1 0.7616 on one machine, 0.7674 on another).

`python -m pipelines.reproducibility` compares metrics/headline.json with the committed one
(git HEAD) and says which case holds; it exits 1 only when a figure moved beyond tolerance.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HEADLINE = Path("metrics/headline.json")

# absolute tolerance per headline metric across CPUs; a metric not listed must match exactly
TOLERANCE: dict[str, float] = {
    # ranking metrics: threshold-free, kernels' rounding moves them in the 5th-6th decimal
    "auroc": 0.005,
    "auprc": 0.005,
    "auprc_kept": 0.01,
    "macro_f1": 0.02,
    "macro_f1_kept": 0.02,
    "accuracy": 0.02,
    # decision metrics: the threshold is chosen on validation, a fine-tune may shift it
    "f1": 0.02,
    "threshold": 0.05,
    "defect_recall": 0.02,
    "precision_at_defect_recall": 0.02,
    # file size in KiB: quantizers may pick other scales, a few bytes of metadata differ
    "kib": 5.0,
}


@dataclass(frozen=True)
class Difference:
    where: str  # e.g. test.onnx_qat_int8.f1
    committed: Any
    now: Any
    tolerance: float | None  # None: must match exactly

    @property
    def within(self) -> bool:
        if self.tolerance is None or not _numbers(self.committed, self.now):
            return False
        return abs(float(self.now) - float(self.committed)) <= self.tolerance

    def __str__(self) -> str:
        bound = "exact" if self.tolerance is None else f"tolerance {self.tolerance:g}"
        return f"{self.where}: committed {self.committed}, now {self.now} ({bound})"


def _numbers(*values: Any) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def differences(committed: Any, now: Any, where: str = "") -> list[Difference]:
    """Every leaf that differs between two headline reports, with its tolerance."""
    if isinstance(committed, dict) and isinstance(now, dict):
        found: list[Difference] = []
        for key in sorted(set(committed) | set(now)):
            path = f"{where}.{key}" if where else str(key)
            if key not in committed or key not in now:
                found.append(Difference(path, committed.get(key), now.get(key), None))
            else:
                found.extend(differences(committed[key], now[key], path))
        return found
    if committed == now:
        return []
    leaf = where.rsplit(".", 1)[-1]
    return [Difference(where, committed, now, TOLERANCE.get(leaf))]


def committed_headline(path: Path = HEADLINE) -> dict[str, Any] | None:
    """The headline file as git HEAD has it; None outside a git checkout or when untracked."""
    result = subprocess.run(
        ["git", "show", f"HEAD:{path.as_posix()}"], capture_output=True, text=True, check=False
    )
    return json.loads(result.stdout) if result.returncode == 0 else None


def verdict(committed: dict[str, Any], now: dict[str, Any]) -> tuple[bool, str]:
    """(within the contract, a few lines saying how)."""
    found = differences(committed, now)
    if not found:
        return True, f"{HEADLINE}: identical to the committed one (same CPU kind and threads)"
    beyond = [d for d in found if not d.within]
    if not beyond:
        worst = max(found, key=lambda d: abs(float(d.now) - float(d.committed)))
        return True, (
            f"{HEADLINE}: {len(found)} figure(s) differ from the committed ones, all within the "
            f"cross-CPU tolerance (largest: {worst}); `git diff metrics/` shows them"
        )
    lines = "\n".join(f"  {d}" for d in beyond)
    return False, f"{HEADLINE}: {len(beyond)} figure(s) moved beyond tolerance:\n{lines}"


def main() -> int:
    committed = committed_headline()
    if committed is None or not HEADLINE.is_file():
        print(f"{HEADLINE}: no committed version to compare with (not a git checkout?)")
        return 0
    ok, message = verdict(committed, json.loads(HEADLINE.read_text()))
    print(message)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
