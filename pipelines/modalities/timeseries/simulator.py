"""Seeded machine-signal simulator: series of a rotating machine's vibration, motor current
and temperature, sampled at the declared rate, healthy or with one fault, plus the dirt the
cleaning rules (pipelines/modalities/timeseries/rules.py) must catch or repair.

Physics kept simple but recognisable (ISO 10816-style vibration analysis):
- healthy: the shaft's 1x harmonic (20-30 Hz) and a small 2x, broadband noise;
- imbalance: a strong 1x harmonic (centrifugal force at shaft speed);
- looseness: many harmonics of the shaft speed (2x..6x) and a clipped, rattling waveform;
- bearing_wear: band energy at 60-90 Hz in bursts at the bearing defect rate, rising along
  the series;
- overheating: vibration as healthy, temperature drifting up and the current with it.
Channels: vibration (g), current (A, 50 Hz mains ripple on the load current), temperature
(degrees C, a slow random walk).

Dirt kinds (SeriesDirt, at most one per series): a long gap, a short gap, a NaN burst, a
stuck channel, spikes, duplicated timestamps, clock jitter, a series cut short, an earlier
series sent again (plan_rows picks which; it may land in another split: a leak). Each series is
drawn by its own generator seeded by (seed, series id), so the table does not depend on how
it is computed. (core.simulator.simulate_rows renders one content column; a series is two,
its clock and its readings, so the plan is rendered here.)
"""

from __future__ import annotations

import numpy as np

from pipelines.core.simulator import DUPLICATE_KINDS, check_n_rows, plan_rows
from pipelines.modalities.timeseries.config import SimulatorConfig
from pipelines.modalities.timeseries.series import LABEL, SERIES_ID, TIME, VALUES, series_table

# the simulator's own channels, in this order; a data config may rename them
CHANNELS = ("vibration", "current", "temperature")
LONG_GAP = (40, 80)  # samples: above any sensible clean.max_gap_samples
SHORT_GAP = (2, 5)


def simulate_series(
    n_series: int, seed: int, cfg: SimulatorConfig, rate_hz: float, with_dirt: bool = False
):
    """The canonical table (series_id, label, time, values) of `n_series` machines, with a
    `dirt` column naming each series' dirt kind ("" for none) when `with_dirt`."""
    check_n_rows("simulate_series", n_series)
    classes = list(cfg.class_shares)
    shares = np.array([cfg.class_shares[c] for c in classes], dtype=float)
    plan = plan_rows(n_series, seed, classes, shares, cfg.dirt.rates(), SERIES_ID)
    rows: dict[str, list] = {SERIES_ID: [], LABEL: [], TIME: [], VALUES: []}
    rows_planned = zip(
        plan[SERIES_ID], plan["label"], plan["dirt"], plan["source"], plan["source_label"],
        strict=True,
    )  # fmt: skip
    for i, label, dirt, source, source_label in rows_planned:
        t = np.arange(cfg.samples) / rate_hz
        if dirt in DUPLICATE_KINDS:
            # the earlier series sent again: its own generator gives its readings back
            label = source_label
            values = machine(label, t, np.random.default_rng([seed, int(source)]))
        else:
            rng = np.random.default_rng([seed, int(i)])
            t, values = add_dirt(dirt, t, machine(label, t, rng), rng, rate_hz)
        rows[SERIES_ID].append(f"machine-{int(i):05d}")
        rows[LABEL].append(label)
        rows[TIME].append(t)
        rows[VALUES].append(values)
    table = series_table(rows)
    return table.add_column("dirt", plan["dirt"]) if with_dirt else table


def machine(label: str, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """float32 (3, samples): vibration, current, temperature of one machine."""
    shaft = rng.uniform(20.0, 30.0)
    phase = rng.uniform(0, 2 * np.pi, size=8)
    progress = t / t[-1]

    def harmonic(k: int, amplitude: float) -> np.ndarray:
        return amplitude * np.sin(2 * np.pi * k * shaft * t + phase[k])

    vibration = harmonic(1, 0.3) + harmonic(2, 0.08) + rng.normal(0, 0.15, t.size)
    current = 10.0 + rng.normal(0, 0.3) + 0.4 * np.sin(2 * np.pi * 50 * t + phase[0])
    temperature = 45.0 + rng.normal(0, 2.0) + np.cumsum(rng.normal(0, 0.02, t.size))
    if label == "imbalance":
        vibration += harmonic(1, rng.uniform(0.6, 1.0))
        current += 0.3 * np.sin(2 * np.pi * shaft * t)
    elif label == "looseness":
        vibration += sum(harmonic(k, rng.uniform(0.1, 0.25)) for k in range(2, 7))
        vibration = np.clip(vibration, -0.5, 0.7)  # the loose part knocks against its stop
    elif label == "bearing_wear":
        carrier = np.sin(2 * np.pi * rng.uniform(60.0, 90.0) * t)
        bursts = np.maximum(np.sin(2 * np.pi * shaft * 0.4 * t), 0) ** 4
        vibration += (0.3 + 0.7 * progress) * rng.uniform(0.5, 0.9) * carrier * bursts
    elif label == "overheating":
        drift = rng.uniform(12.0, 25.0) * progress
        temperature += drift
        current += 0.08 * drift
    current += rng.normal(0, 0.15, t.size)
    return np.stack([vibration, current, temperature]).astype(np.float32)


def add_dirt(
    kind: str, t: np.ndarray, values: np.ndarray, rng: np.random.Generator, rate_hz: float
) -> tuple[np.ndarray, np.ndarray]:
    """One series with dirt of `kind` ("" none): the clock and values as a logger sends them."""
    n = t.size
    if kind in ("long_gap", "short_gap"):
        low, high = LONG_GAP if kind == "long_gap" else SHORT_GAP
        width = int(rng.integers(low, high + 1))
        start = int(rng.integers(n // 4, n - n // 4 - width))
        keep = np.r_[0:start, start + width : n]
        return t[keep], values[:, keep]
    values = values.copy()
    if kind == "nan_burst":
        start = int(rng.integers(1, n - 6))
        values[rng.integers(0, values.shape[0]), start : start + int(rng.integers(2, 6))] = np.nan
    elif kind == "stuck":
        channel, start = int(rng.integers(0, values.shape[0])), int(rng.integers(0, n // 5))
        values[channel, start:] = values[channel, start]
    elif kind == "spikes":
        channel = int(rng.integers(0, values.shape[0]))
        at = rng.choice(np.arange(1, n - 1), size=3, replace=False)
        values[channel, at] += 60.0 * (values[channel].std() + 0.1)
    elif kind == "duplicate_timestamps":
        at = np.sort(rng.choice(n, size=5, replace=False))
        order = np.sort(np.r_[np.arange(n), at], kind="stable")
        return t[order], values[:, order]
    elif kind == "jitter":
        return t + rng.uniform(-0.2, 0.2, n) / rate_hz, values
    elif kind == "too_short":
        keep = int(n * rng.uniform(0.1, 0.4))
        return t[:keep], values[:, :keep]
    return t, values
