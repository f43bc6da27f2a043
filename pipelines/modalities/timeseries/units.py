"""Units a sensor channel may be declared in (data.timeseries.units: what the model reads;
data.timeseries.given_units: what a channel arrives in) and the conversion between two of
them. The factors are scipy.constants' (standard gravity, psi, inch, ...) and temperatures go
through scipy.constants.convert_temperature, so no conversion constant is typed here.

The table holds names only, free of heavy imports: pipelines.config checks a unit's name when
the config loads; scipy is imported when clean converts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# quantity -> unit -> its SI factor as a product of scipy.constants names (() is 1); the
# temperature units name scipy's convert_temperature scale instead
QUANTITIES: dict[str, dict[str, tuple[str, ...]]] = {
    "acceleration": {"m/s^2": (), "g": ("g",), "mg": ("milli", "g")},
    "velocity": {"m/s": (), "mm/s": ("milli",), "in/s": ("inch",)},
    "displacement": {"m": (), "mm": ("milli",), "um": ("micro",), "in": ("inch",)},
    "current": {"A": (), "mA": ("milli",)},
    "voltage": {"V": (), "mV": ("milli",)},
    "power": {"W": (), "kW": ("kilo",), "hp": ("hp",)},
    "pressure": {"Pa": (), "kPa": ("kilo",), "bar": ("bar",), "psi": ("psi",)},
    "temperature": {"degC": ("Celsius",), "degF": ("Fahrenheit",), "K": ("Kelvin",)},
    "frequency": {"Hz": (), "rpm": ("rpm",)},
}
# unit -> (quantity, factor names)
UNITS: dict[str, tuple[str, tuple[str, ...]]] = {
    unit: (quantity, names) for quantity, units in QUANTITIES.items()
    for unit, names in units.items()
}  # fmt: skip


def unit_problem(unit: object) -> str | None:
    """Why `unit` is not a known unit's name, or None."""
    if isinstance(unit, str) and unit in UNITS:
        return None
    return f"a unit among {', '.join(UNITS)}"


def quantity(unit: str) -> str:
    return UNITS[unit][0]


def _si_factor(unit: str) -> float:
    from scipy import constants

    factor = 1.0
    for name in UNITS[unit][1]:
        # revolutions per minute in Hz: scipy.constants has `minute` (60 s), not rpm
        factor *= 1.0 / constants.minute if name == "rpm" else getattr(constants, name)
    return factor


def converter(given: str, wanted: str) -> Callable[[np.ndarray], np.ndarray]:
    """A function that maps readings in `given` to readings in `wanted` (same quantity,
    checked by the config)."""
    if quantity(given) == "temperature":
        from scipy.constants import convert_temperature

        scale_in, scale_out = UNITS[given][1][0], UNITS[wanted][1][0]
        return lambda x: convert_temperature(x, scale_in, scale_out).astype(x.dtype)
    ratio = _si_factor(given) / _si_factor(wanted)
    return lambda x: (x * ratio).astype(x.dtype)


def describe(given: str, wanted: str) -> str:
    """The note clean records for a converted channel."""
    if quantity(given) == "temperature":
        return f"{given} -> {wanted}"
    return f"{given} -> {wanted} (x {_si_factor(given) / _si_factor(wanted):.6g})"
