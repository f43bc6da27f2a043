"""Checks of config values, shared by every modality's config dataclasses, so each bad value
fails on construction with the key, the value and what was expected, worded alike
everywhere (e.g. "data.text.clean.length.min_chars = -1: expected an integer >= 0").

Free of heavy imports: pipelines.config declares the sections in the structured config."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, ClassVar

from pipelines.errors import PipelineError


def fail(key: str, value: object, expected: str) -> None:
    raise PipelineError(f"{key} = {value!r}: expected {expected}")


def check_bool(key: str, value: object) -> None:
    if not isinstance(value, bool):
        fail(key, value, "true or false")


def check_int(key: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        fail(key, value, f"an integer >= {minimum}")


def check_number(key: str, value: object, minimum: float, maximum: float | None = None) -> None:
    """A finite number in [minimum, maximum] (no upper bound when maximum is None)."""
    ok = (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and value >= minimum
        and (maximum is None or value <= maximum)
    )
    if not ok:
        upper = "" if maximum is None else f", {maximum:g}]"
        fail(
            key, value, f"a number in [{minimum:g}{upper}" if upper else f"a number >= {minimum:g}"
        )


def check_interval(key: str, value: object, low: float, high: float, *, open_low: bool) -> None:
    """A finite number in [low, high], or in (low, high] when open_low."""
    ok = (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and (value > low if open_low else value >= low)
        and value <= high
    )
    if not ok:
        fail(key, value, f"a number in {'(' if open_low else '['}{low:g}, {high:g}]")


def check_fraction(key: str, value: object, *, open_low: bool = False) -> None:
    check_interval(key, value, 0.0, 1.0, open_low=open_low)


def check_str(key: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        fail(key, value, "a non-empty string")


def check_str_list(key: str, value: object, allowed: tuple[str, ...] | None = None) -> None:
    items_ok = isinstance(value, list | tuple) and all(isinstance(v, str) and v for v in value)
    if not items_ok:
        fail(key, value, "a list of non-empty strings")
    for item in value:  # type: ignore[union-attr]
        if allowed is not None and item not in allowed:
            fail(key, list(value), f"items each one of {', '.join(allowed)}")  # type: ignore[arg-type]


# where a gated figure is measured: in every split, in the splits after train (figures
# relative to train: leaks, unseen words), or once between train and test (drift)
EVERY_SPLIT, AFTER_TRAIN, DRIFT = "every split", "after train", "train vs test"


def gate(bound: float, figure: str, where: str = EVERY_SPLIT) -> Any:
    """A `max_<figure>` field of a gates config: its default `bound`, what a failure line calls
    the figure, and where it is measured (EVERY_SPLIT, AFTER_TRAIN or DRIFT)."""
    return field(default=bound, metadata={"figure": figure, "where": where})


def gated_figures(gates: Any, where: str) -> dict[str, str]:
    """{figure: its name in a failure line} of the `max_<figure>` gates measured `where`, in
    field order."""
    return {
        f.name.removeprefix("max_"): f.metadata["figure"]
        for f in fields(gates)
        if f.metadata.get("where") == where
    }


def check_gate_bounds(gates: Any, key: str) -> None:
    """A profile's quality gates, by the names' convention: min_* an integer >= 0, max_*_rate
    a fraction, max_*_psi a number >= 0 (an infinite one turns the gate off)."""
    for f in fields(gates):
        value, where = getattr(gates, f.name), f"{key}.{f.name}"
        if f.name.startswith("max_") and "where" not in f.metadata:
            # a bound nobody checks would pass every profile: a programming error, not input
            raise TypeError(f"{type(gates).__name__}.{f.name}: declare max_* gates with gate()")
        if f.name.startswith("min_"):
            check_int(where, value, 0)
        elif f.name.endswith("_rate"):
            check_fraction(where, value)
        elif isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            fail(where, value, "a number >= 0")


def from_mapping(key: str, cls: type, mapping: dict[str, Any]) -> Any:
    """A section given as a plain mapping (YAML), unknown keys named before construction."""
    known = [f.name for f in fields(cls)]
    for name in mapping:
        if name not in known:
            raise PipelineError(f"{key}.{name}: unknown key; expected one of {', '.join(known)}")
    return cls(**mapping)


def build_sections(owner: Any, key: str) -> None:
    """Each nested section of the dataclass `owner` (a field whose default is made by a
    dataclass) given as a plain mapping becomes that dataclass (validated by it); anything
    else than the dataclass or a mapping fails naming `key.name`."""
    for f in fields(owner):
        cls = f.default_factory
        if not (isinstance(cls, type) and is_dataclass(cls)):
            continue
        value = getattr(owner, f.name)
        if isinstance(value, dict):
            setattr(owner, f.name, from_mapping(f"{key}.{f.name}", cls, value))
        elif not isinstance(value, cls):
            fail(f"{key}.{f.name}", value, f"a {cls.__name__} or a mapping")


def check_columns(owner: Any, key: str, *names: str) -> None:
    """The column-name fields `names` of `owner` are non-empty strings; None (no such column,
    e.g. no label) passes."""
    for name in names:
        value = getattr(owner, name)
        if value is not None:
            check_str(f"{key}.{name}", value)


class Section:
    """A config section that knows its key, named in the class statement
    (`class TextCleanConfig(CleanSettings, key="data.text.clean")`), so that its checks and
    errors name it without each section spelling it again."""

    key: ClassVar[str] = ""

    def __init_subclass__(cls, key: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if key:
            cls.key = key


@dataclass
class CleanSettings(Section):
    """What every modality's cleaning config has: the column-name keys it lists in
    `columns` (its content column, e.g. text_column) and the label column (None: no labels),
    each a non-empty string, and its rules as nested sections (built from mappings)."""

    columns: ClassVar[tuple[str, ...]] = ()

    label_column: str | None = "label"
    """The label column (`label` after ingest); null: the data has no labels."""

    def __post_init__(self) -> None:
        check_columns(self, self.key, *self.columns, "label_column")
        build_sections(self, self.key)


@dataclass
class ProfileGates(Section):
    """The quality gates every modality's profile has; a modality's gates config extends it
    with its own `max_<figure>` gates and names its key in the class statement
    (`class TextGates(ProfileGates, key="data.text.profile.gates")`). The profile stage
    fails, naming each gate missed, when one is."""

    min_rows: int = 100
    """Fewest rows a split may have."""
    min_class_rows: int = 5
    """Fewest train rows the rarest label may have."""
    max_duplicate_rate: float = gate(0.2, "duplicate rate")
    """Largest share of duplicates within a split (exact and near; perceptual for images)."""
    max_leak_rate: float = gate(0.05, "leak rate (duplicates of train rows)", AFTER_TRAIN)
    """Largest share of val/test rows repeating train rows."""
    max_label_psi: float = gate(0.25, "label PSI", DRIFT)
    """Largest train-vs-test PSI of the label shares."""

    def __post_init__(self) -> None:
        check_gate_bounds(self, self.key)


class DirtShares:
    """For a dataclass of dirt shares (one float field per kind, each row gets at most one).
    A subclass that names its key and what a row is in the class statement
    (`class SeriesDirt(DirtShares, key="data.timeseries.simulator.dirt", unit="series")`) is
    checked on construction: each share a fraction, their sum at most 1."""

    key: ClassVar[str] = ""
    unit: ClassVar[str] = "row"

    def __init_subclass__(cls, key: str = "", unit: str = "row", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.key, cls.unit = key, unit

    def __post_init__(self) -> None:
        if not self.key:
            return
        for f in fields(self):  # type: ignore[arg-type]
            check_fraction(f"{self.key}.{f.name}", getattr(self, f.name))
        self.check_total(self.key, self.unit)

    def rates(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]

    def check_total(self, key: str, unit: str) -> None:
        """Fail naming `key` when the shares sum above 1 (`unit`: what a row is)."""
        total = sum(self.rates().values())
        if total > 1.0 + 1e-9:
            raise PipelineError(
                f"{key}: rates sum to {total:g}: expected <= 1 (each {unit} gets at most one "
                "kind of dirt)"
            )
