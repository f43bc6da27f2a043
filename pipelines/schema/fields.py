"""Field helpers every section's schema uses: a key's valid range, checked with the schema."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Bounds:
    """The valid range of a numeric key; checked with the schema, before any stage works."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def admits(self, value: float) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return True  # a type error is OmegaConf's to report
        return (
            math.isfinite(value)
            and (self.ge is None or value >= self.ge)
            and (self.gt is None or value > self.gt)
            and (self.le is None or value <= self.le)
            and (self.lt is None or value < self.lt)
        )

    def describe(self) -> str:
        parts = [
            f"{op} {bound:g}"
            for op, bound in ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
            if bound is not None
        ]
        return "a number " + " and ".join(parts)


def bounded(default: Any = dataclasses.MISSING, *, factory: Any = None, **bounds: float) -> Any:
    """A dataclass field with a valid range (for a list: of each item)."""
    metadata = {"bounds": Bounds(**bounds)}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


FRACTION = {"ge": 0.0, "le": 1.0}
POSITIVE = {"gt": 0.0}
AT_LEAST_ONE = {"ge": 1}
NON_NEGATIVE = {"ge": 0}
