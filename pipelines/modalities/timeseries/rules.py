"""The series cleaning rules (data.timeseries.clean), run by the shared rule engine
(pipelines.core.rules.run_rules) train split first. Per series, in this order:

0. units: a channel declared in data.timeseries.given_units is converted to its
   data.timeseries.units unit before any rule reads it (the conversion is in the metrics);
1. repeated timestamps: a sample logged twice is dropped (the first reading kept; counted);
2. resample: every channel interpolated linearly onto the declared rate's regular grid,
   which also absorbs clock jitter; a run of missing samples (no timestamp, or NaN) up to
   max_gap_samples is filled, a longer one removes the series (`gap`);
3. too_short: fewer than min_samples on the grid (`too_short`);
4. stuck: a channel repeating one value for stuck_samples readings (`stuck`);
5. spikes: readings over spike_z robust z-scores (median, 1.4826 x MAD) from their channel's
   median are replaced by interpolation of their neighbours (counted);
6. exact duplicates (the core's exact pass, train first): a series whose readings repeat an
   earlier kept one's is removed, as `exact_duplicate` within a split and as `exact_leak`
   when the earlier one is in train.

A removed series goes to quarantine as it came, with its rule, a reason naming the channel and
sample, its split and a PNG figure of the series with the offending stretch shaded.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from typing import Any

import datasets
import numpy as np

from pipelines.core.rules import Cleaned, RuleSet, SplitVerdicts, run_rules, validate_label
from pipelines.io import arrow_column
from pipelines.modalities.timeseries.config import CleanConfig
from pipelines.modalities.timeseries.series import LABEL, TIME, VALUES

KEY = "data.timeseries.clean"
REMOVAL_RULES = {
    "gap": f"{KEY}.max_gap_samples",
    "too_short": f"{KEY}.min_samples",
    "stuck": f"{KEY}.stuck_samples",
    "exact_duplicate": f"{KEY}.exact_duplicates",
    "exact_leak": f"{KEY}.exact_duplicates",
}
RULE, REASON, SPLIT, FIGURE = "rule", "reason", "split", "figure"
_RULE, _REASON, _CLEAN, _SPAN = "_ts_rule", "_ts_reason", "_ts_clean", "_ts_span"
_FILLED, _SPIKES, _REPEATS, _KEY = "_ts_filled", "_ts_spikes", "_ts_repeats", "_ts_key"
# channel index -> readings in its given unit to readings in the unit the model reads
Conversions = dict[int, Callable[[np.ndarray], np.ndarray]]
WORK = (_RULE, _REASON, _CLEAN, _SPAN, _FILLED, _SPIKES, _REPEATS, _KEY)


class SeriesRules(RuleSet, verdict=_RULE, exact_key=_KEY):
    """Per series: repeated timestamps dropped, resampled to the declared rate, short gaps
    filled, spikes replaced; too short, gapped and stuck series removed with the span that
    broke the rule; exact copies across splits, train first."""

    key = KEY
    removal_rules = REMOVAL_RULES
    reserved = WORK
    owner = "the series cleaning rules"
    cfg: CleanConfig

    def __init__(
        self, cfg: CleanConfig, rate_hz: float, channels: list[str], conversions: Conversions
    ) -> None:
        super().__init__(cfg)
        self.rate_hz, self.channels, self.conversions = rate_hz, channels, conversions

    @property
    def exact_duplicates(self) -> bool:
        return bool(self.cfg.exact_duplicates)

    def validate(self, ds: datasets.Dataset, source: str, min_classes: int) -> None:
        validate_label(ds, LABEL, source, min_classes)

    def row_pass(self, ds: datasets.Dataset, name: str) -> datasets.Dataset:
        return _row_pass(ds, name, self.cfg, self.rate_hz, self.channels, self.conversions)

    def figures(self, state: SplitVerdicts) -> dict[str, Any]:
        return _figures(state)

    def kept(self, state: SplitVerdicts) -> datasets.Dataset:
        return _kept(state, self.rate_hz)

    def removed(self, state: SplitVerdicts) -> datasets.Dataset:
        return _removed(state)


def clean_series_splits(
    splits: dict[str, datasets.Dataset],
    cfg: CleanConfig,
    rate_hz: float,
    channels: list[str],
    conversions: Conversions | None = None,
) -> Cleaned:
    """run_rules with SeriesRules; the report per split: rows_in, rows_out, removed per rule,
    and the repairs (series with gaps filled, spikes replaced, repeated timestamps dropped).
    `conversions` (unit_conversions) maps a channel's index to its unit conversion."""
    return run_rules(splits, SeriesRules(cfg, rate_hz, channels, conversions or {}))


def unit_conversions(
    channels: list[str], units: dict[str, str], given_units: dict[str, str]
) -> tuple[Conversions, dict[str, str]]:
    """(channel index -> conversion, channel -> the note clean records) for every channel
    that arrives in another unit than the model reads (checked when the config loaded)."""
    from pipelines.modalities.timeseries.units import converter, describe

    conversions, notes = {}, {}
    for channel, given in given_units.items():
        if given != units[channel]:
            conversions[channels.index(channel)] = converter(given, units[channel])
            notes[channel] = describe(given, units[channel])
    return conversions, notes


def clean_one(
    t: np.ndarray, values: np.ndarray, cfg: CleanConfig, rate_hz: float, channels: list[str]
) -> dict[str, Any]:
    """One series through the rules: its verdict (rule, reason, the offending span in
    seconds), the cleaned values on the regular grid, and the repairs made."""
    out: dict[str, Any] = {_RULE: "", _REASON: "", _SPAN: [], _CLEAN: [[] for _ in channels]}
    out.update({_FILLED: 0, _SPIKES: 0, _REPEATS: 0})

    def removed(rule: str, reason: str, start: float, stop: float) -> dict[str, Any]:
        return {**out, _RULE: rule, _REASON: reason, _SPAN: [float(start), float(stop)]}

    t, first = np.unique(t, return_index=True)
    out[_REPEATS] = values.shape[1] - len(first)
    values = values[:, first]
    period = 1.0 / rate_hz
    grid = t[0] + np.arange(int(np.floor((t[-1] - t[0]) / period + 0.5)) + 1) * period
    if len(t) < 2 or len(grid) < cfg.min_samples:
        n = len(grid) if len(t) >= 2 else len(t)
        return removed("too_short", f"{n} samples < min_samples {cfg.min_samples}", t[0], t[-1])
    clean = np.empty((values.shape[0], len(grid)), dtype=np.float32)
    for c, name in enumerate(channels):
        valid = ~np.isnan(values[c])
        if valid.sum() < 2:
            return removed("gap", f"channel {name!r} has no readings", t[0], t[-1])
        tv, readings = t[valid], values[c][valid]
        missing = np.round(np.diff(tv) / period).astype(np.int64) - 1
        if missing.max(initial=0) > cfg.max_gap_samples:
            at = int(missing.argmax())
            reason = (
                f"channel {name!r}: {missing[at]} samples missing after t = {tv[at]:.3f} s > "
                f"max_gap_samples {cfg.max_gap_samples}"
            )
            return removed("gap", reason, tv[at], tv[at + 1])
        out[_FILLED] = max(out[_FILLED], int(missing.max(initial=0) > 0 or (~valid).any()))
        run, begin = longest_constant_run(readings)
        if run >= cfg.stuck_samples:
            reason = (
                f"channel {name!r} stuck at {readings[begin]:g} for {run} readings from "
                f"t = {tv[begin]:.3f} s"
            )
            return removed("stuck", reason, tv[begin], tv[begin + run - 1])
        clean[c] = np.interp(grid, tv, readings)
        out[_SPIKES] += replace_spikes(clean[c], cfg.spike_z)
    return {**out, _CLEAN: clean.tolist()}


def longest_constant_run(x: np.ndarray) -> tuple[int, int]:
    """(length, start) of the longest run of one repeated value."""
    if len(x) == 0:
        return 0, 0
    change = np.flatnonzero(np.diff(x) != 0) + 1
    starts = np.r_[0, change]
    lengths = np.diff(np.r_[starts, len(x)])
    i = int(lengths.argmax())
    return int(lengths[i]), int(starts[i])


def replace_spikes(x: np.ndarray, z: float) -> int:
    """Readings over `z` robust z-scores replaced in place by interpolation of the others;
    how many."""
    median = np.median(x)
    mad = 1.4826 * np.median(np.abs(x - median))
    if mad == 0:
        return 0
    spikes = np.abs(x - median) / mad > z
    if spikes.any() and not spikes.all():
        index = np.arange(len(x))
        x[spikes] = np.interp(index[spikes], index[~spikes], x[~spikes])
    return int(spikes.sum()) if not spikes.all() else 0


def _row_pass(
    ds: datasets.Dataset,
    split: str,
    cfg: CleanConfig,
    rate_hz: float,
    channels: list[str],
    conversions: Conversions,
) -> datasets.Dataset:
    results = [
        clean_one(np.asarray(t, np.float64), in_units(v, conversions), cfg, rate_hz, channels)
        for t, v in zip(
            arrow_column(ds, TIME).to_pylist(), arrow_column(ds, VALUES).to_pylist(), strict=True
        )  # fmt: skip
    ]
    for column in WORK[:-1]:
        ds = ds.add_column(column, [r[column] for r in results])
    return ds.add_column(_KEY, [reading_key(np.asarray(v, np.float32)) for v in
                                arrow_column(ds, VALUES).to_pylist()])  # fmt: skip


def in_units(values: list, conversions: Conversions) -> np.ndarray:
    """A series' readings (channels x samples) as float32, each channel in the unit the model
    reads (NaN stays NaN)."""
    out = np.asarray(values, np.float32)
    for channel, convert in conversions.items():
        out[channel] = convert(out[channel])
    return out


def reading_key(values: np.ndarray) -> str:
    """The same readings give the same key (an exact copy of a series, whatever its id)."""
    return hashlib.sha1(np.ascontiguousarray(values, np.float32).tobytes()).hexdigest()


def _figures(state: SplitVerdicts) -> dict[str, Any]:
    kept = state.kept_rows()
    work = state.work.select(kept)
    return {
        "gaps_filled": int(sum(work[_FILLED])),
        "spikes_replaced": int(sum(work[_SPIKES])),
        "repeated_timestamps_dropped": int(sum(work[_REPEATS])),
    }


def _kept(state: SplitVerdicts, rate_hz: float) -> datasets.Dataset:
    from pipelines.modalities.timeseries.series import SERIES_ID, series_table

    work = state.work.select(state.kept_rows())
    cleaned = [np.asarray(v, np.float32) for v in arrow_column(work, _CLEAN).to_pylist()]
    return series_table(
        {
            SERIES_ID: work[SERIES_ID],
            LABEL: work[LABEL],
            TIME: [np.arange(v.shape[1]) / rate_hz for v in cleaned],
            VALUES: cleaned,
        }
    )


def _removed(state: SplitVerdicts) -> datasets.Dataset:
    """Removed series as they came, with rule, reason, split and a PNG figure."""
    rows = state.removed_rows()
    work = state.work.select(rows).flatten_indices()
    # the row rules' verdicts, or the exact pass's (it records its own in state.rules)
    rules = [state.rules[i] for i in rows]
    reasons = [
        reason or "repeats the readings of an earlier series" + (" in train" if "leak" in rule
                                                                 else " of its split")
        for rule, reason in zip(rules, work[_REASON], strict=True)
    ]  # fmt: skip
    figures = [
        series_png(np.asarray(t), np.asarray(v, np.float32), span, f"{rule}: {reason}")
        for t, v, span, rule, reason in zip(
            work[TIME],
            arrow_column(work, VALUES).to_pylist(),
            work[_SPAN],
            rules,
            reasons,
            strict=True,
        )  # fmt: skip
    ]
    from pipelines.modalities.timeseries.series import SERIES_ID, features

    columns = {name: work[name] for name in (SERIES_ID, LABEL, TIME)}
    columns[VALUES] = arrow_column(work, VALUES).to_pylist()
    extra = {RULE: rules, REASON: reasons, SPLIT: [state.name] * len(work)}
    types = {name: datasets.Value("string") for name in extra}
    return datasets.Dataset.from_dict(
        {**columns, **extra, FIGURE: figures},
        features=datasets.Features({**features(), **types, FIGURE: datasets.Value("binary")}),
    )


def series_png(t: np.ndarray, values: np.ndarray, span: list[float], title: str) -> bytes:
    """A small PNG of every channel over time (one strip each, scaled to its own range), the
    offending `span` (seconds) shaded red, the verdict as its title. Drawn with Pillow: a
    matplotlib figure per quarantined series cost ~1 s each on a 2-core machine."""
    from PIL import Image, ImageDraw

    width, strip, top = 480, 60, 14
    image = Image.new("RGB", (width, top + strip * len(values)), "white")
    draw = ImageDraw.Draw(image)
    t = np.asarray(t[: values.shape[1]], np.float64)
    t0, t1 = float(t[0]), float(max(t[-1], t[0] + 1e-9))

    def x(seconds: float) -> float:
        return (seconds - t0) / (t1 - t0) * (width - 1)

    for c, channel in enumerate(values):
        y0 = top + c * strip
        if span:
            draw.rectangle([x(span[0]), y0, max(x(span[1]), x(span[0]) + 2), y0 + strip - 2],
                           fill=(255, 200, 200))  # fmt: skip
        finite = np.isfinite(channel)
        if finite.sum() > 1:
            low, high = np.nanmin(channel), np.nanmax(channel)
            scale = (strip - 6) / (high - low) if high > low else 0.0
            ys = y0 + strip - 3 - (np.where(finite, channel, low) - low) * scale
            draw.line(list(zip(x(t).tolist(), ys.tolist(), strict=True)), fill=(31, 119, 180))
        draw.line([(0, y0 + strip - 1), (width, y0 + strip - 1)], fill=(200, 200, 200))
    draw.text((2, 1), title[:95], fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
