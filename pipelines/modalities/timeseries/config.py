"""Settings of the sensor time-series modality: the declared sampling and channels, the
simulator, the cleaning rules, the profile gates, the augmentation policy and the windows the
model reads. One dataclass per section, each validated on construction, so a bad value fails
before any series is read, naming the key, the value and what was expected.

Free of heavy imports (no numpy or datasets) so pipelines.config can declare these in the
structured config cheaply. The check helpers are pipelines/core/config_checks.py's, so every
modality words its errors alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.core.config_checks import (
    DRIFT,
    DirtShares,
    ProfileGates,
    build_sections,
    check_bool,
    check_fraction,
    check_int,
    check_number,
    check_str,
    check_str_list,
    fail,
    gate,
)

KEY = "data.timeseries"
MACHINE_CLASSES = ("healthy", "bearing_wear", "imbalance", "looseness", "overheating")


@dataclass
class SeriesDirt(DirtShares, key=f"{KEY}.simulator.dirt", unit="series"):
    """Share of simulated series that get each kind of dirt (at most one per series). Each
    kind is made to trip one cleaning rule, or to be repaired by one, so the rules can be
    scored on it."""

    long_gap: float = 0.02
    """Samples missing for longer than clean.max_gap_samples (gap)."""
    short_gap: float = 0.04
    """A few samples missing: resampling fills them (filled)."""
    nan_burst: float = 0.03
    """A burst of NaN readings on one channel, short enough to fill."""
    stuck: float = 0.02
    """One channel flat-lined for most of the series (stuck)."""
    spikes: float = 0.03
    """Isolated readings far off scale (spikes: replaced)."""
    duplicate_timestamps: float = 0.03
    """Some samples logged twice (deduplicated)."""
    jitter: float = 0.03
    """The clock wanders by up to 20% of a period (resampled)."""
    too_short: float = 0.02
    """The logger stopped early (too_short)."""
    exact_duplicate: float = 0.02
    """An earlier series sent again (exact_duplicate, exact_leak)."""


def _machine_shares() -> dict[str, float]:
    # overheating is the rare fault a monitor exists for
    return {
        "healthy": 0.4,
        "bearing_wear": 0.2,
        "imbalance": 0.17,
        "looseness": 0.15,
        "overheating": 0.08,
    }


@dataclass
class SimulatorConfig:
    """Machines sampled at data.timeseries.sampling_rate_hz on the declared channels
    (vibration, current, temperature), healthy or with one of MACHINE_CLASSES' faults."""

    samples: int = 512
    """Samples per simulated series before dirt (at least 64)."""
    class_shares: dict[str, float] = field(default_factory=_machine_shares)
    """Share of series per machine class (names among MACHINE_CLASSES; normalised to sum 1)."""
    dirt: SeriesDirt = field(default_factory=SeriesDirt)
    """Share of series that get each kind of dirt."""

    def __post_init__(self) -> None:
        key = f"{KEY}.simulator"
        check_int(f"{key}.samples", self.samples, 64)
        if not isinstance(self.class_shares, dict) or len(self.class_shares) < 2:
            fail(f"{key}.class_shares", self.class_shares, "a mapping of at least 2 classes")
        for name, share in self.class_shares.items():
            if name not in MACHINE_CLASSES:
                fail(f"{key}.class_shares.{name}", share, f"one of {', '.join(MACHINE_CLASSES)}")
            check_number(f"{key}.class_shares.{name}", share, 0.0)
        if sum(self.class_shares.values()) <= 0:
            fail(f"{key}.class_shares", self.class_shares, "shares with a positive sum")
        build_sections(self, key)


@dataclass
class CleanConfig:
    """The rules, in order: too_short, timestamps deduplicated, resampled to the declared
    rate with gaps up to max_gap_samples filled (longer: gap), stuck channels, spikes
    replaced. A removed series goes to quarantine with its rule, reason and a figure."""

    min_samples: int = 256
    """Samples a series must keep after resampling (too_short below); at least one window."""
    max_gap_samples: int = 8
    """Longest run of missing samples filled by interpolation."""
    stuck_samples: int = 64
    """A channel repeating one value this long is a stuck sensor."""
    spike_z: float = 12.0
    """|x - median| / (1.4826 MAD) above this is a spike (replaced)."""
    exact_duplicates: bool = True
    """Remove a series whose readings repeat an earlier one's exactly: a duplicate within its
    split, a leak when the earlier one is in train."""

    def __post_init__(self) -> None:
        key = f"{KEY}.clean"
        check_int(f"{key}.min_samples", self.min_samples, 2)
        check_int(f"{key}.max_gap_samples", self.max_gap_samples, 0)
        check_int(f"{key}.stuck_samples", self.stuck_samples, 2)
        check_number(f"{key}.spike_z", self.spike_z, 1.0)
        check_bool(f"{key}.exact_duplicates", self.exact_duplicates)


@dataclass
class GatesConfig(ProfileGates, key=f"{KEY}.profile.gates"):
    """Besides exact duplicates, leaks and label drift: sampling regularity, unfillable gaps,
    stuck channels and the drift of the channels' per-series statistics."""

    min_rows: int = 30
    """Series each split must hold."""
    max_irregular_rate: float = gate(0.3, "irregular sampling rate")
    """Series whose intervals stray > 5% from the declared period (clean resamples them)."""
    max_gap_rate: float = gate(0.2, "unfillable gap rate")
    """Series with a gap longer than clean.max_gap_samples, or a stuck channel."""
    max_flat_rate: float = gate(0.2, "stuck channel rate")
    """Series with a stuck (flat-lined) channel."""
    max_channel_psi: float = gate(0.25, "worst channel-statistic PSI", DRIFT)
    """Train vs test, the worst channel statistic (per-series mean or std of a channel)."""


@dataclass
class ProfileConfig:
    gates: GatesConfig = field(default_factory=GatesConfig)
    """The profile's quality gates: the stage fails, naming each one missed."""
    examples_per_class: int = 2
    """Series drawn per class in profile/examples.png."""

    def __post_init__(self) -> None:
        check_int(f"{KEY}.profile.examples_per_class", self.examples_per_class, 1)
        build_sections(self, f"{KEY}.profile")


@dataclass
class AugmentConfig:
    """Train-split top-up: every class reaches min_class_share of the largest class's series
    with transformed copies of its own series; each copy gets every operation whose strength
    is > 0 (a strength of 0 turns it off)."""

    enabled: bool = True
    """False: the train split passes through unchanged."""
    min_class_share: float = 0.5
    """Each class is topped up to this share of the largest class's series, in [0, 1]."""
    jitter_std: float = 0.03
    """Gaussian noise, in units of the channel's std."""
    scaling_std: float = 0.1
    """One factor per channel ~ N(1, s)."""
    magnitude_warp_std: float = 0.1
    """A smooth curve (4 knots) ~ N(1, s) multiplies the series."""
    time_warp_std: float = 0.1
    """A smooth monotone re-timing, knot speeds ~ N(1, s)."""
    slice_ratio: float = 0.9
    """A random slice of this share of the series, stretched back."""
    mix_share: float = 0.3
    """Weight of a second same-class series mixed in (0: off)."""

    def __post_init__(self) -> None:
        key = f"{KEY}.augment"
        check_bool(f"{key}.enabled", self.enabled)
        for name in ("min_class_share", "jitter_std", "scaling_std", "magnitude_warp_std",
                     "time_warp_std", "mix_share"):  # fmt: skip
            check_fraction(f"{key}.{name}", getattr(self, name))
        check_fraction(f"{key}.slice_ratio", self.slice_ratio, open_low=True)


@dataclass
class WindowConfig:
    """What the model reads: windows of `length` samples every `stride` samples of a series,
    each labelled with its series' class (windows never cross a split: series are split)."""

    length: int = 128
    """Samples per window (at least 8; a kept series holds at least one)."""
    stride: int = 64
    """Samples between the starts of consecutive windows (at least 1)."""

    def __post_init__(self) -> None:
        check_int(f"{KEY}.window.length", self.length, 8)
        check_int(f"{KEY}.window.stride", self.stride, 1)


@dataclass
class TimeseriesDataConfig:
    """data.modality = timeseries (conf/data/machine_signals.yaml). Long-format files name
    their series with data.schema.id_columns[0] and their clock with data.schema.time_column
    (seconds, or timestamps)."""

    channels: list[str] = field(default_factory=lambda: ["vibration", "current", "temperature"])
    """The channels every series has, in the order the model reads them."""
    sampling_rate_hz: float = 200.0
    """The declared sampling rate: clean resamples every series to it."""
    simulator: SimulatorConfig = field(default_factory=SimulatorConfig)
    """The seeded machine simulator (data.source.kind=simulator)."""
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    """The profile stage: gates and example figures."""
    clean: CleanConfig = field(default_factory=CleanConfig)
    """The cleaning rules; removed series go to the quarantine with rule, reason and figure."""
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    """The train split's top-up of rare classes."""
    window: WindowConfig = field(default_factory=WindowConfig)
    """The windows the model reads."""
    units: dict[str, str] = field(default_factory=dict)
    """The unit the model reads each channel in (e.g. temperature: degC); names from
    pipelines/modalities/timeseries/units.py. A channel left out is read as it comes."""
    given_units: dict[str, str] = field(default_factory=dict)
    """The unit a channel arrives in when it is not its `units` one (e.g. temperature: degF):
    clean converts it and records the conversion in its metrics (units_converted)."""

    def __post_init__(self) -> None:
        check_str_list(f"{KEY}.channels", self.channels)
        if not self.channels:
            fail(f"{KEY}.channels", self.channels, "at least one channel")
        for channel in self.channels:
            check_str(f"{KEY}.channels", channel)
        check_number(f"{KEY}.sampling_rate_hz", self.sampling_rate_hz, 1e-6)
        self._check_units()
        build_sections(self, KEY)
        if self.clean.min_samples < self.window.length:
            fail(
                f"{KEY}.clean.min_samples",
                self.clean.min_samples,
                f"at least {KEY}.window.length = {self.window.length} (a kept series must "
                "hold a window)",
            )

    def _check_units(self) -> None:
        """Each declared unit known, on a declared channel; a given unit has a wanted one of
        the same quantity (an unknown unit would otherwise surface mid-clean)."""
        from pipelines.modalities.timeseries.units import quantity, unit_problem

        for section in ("units", "given_units"):
            declared = getattr(self, section)
            if not isinstance(declared, dict):
                fail(f"{KEY}.{section}", declared, "a mapping of channel to unit")
            for channel, unit in declared.items():
                key = f"{KEY}.{section}.{channel}"
                if channel not in self.channels:
                    fail(key, unit, f"a channel among data.timeseries.channels "
                         f"({', '.join(self.channels)})")  # fmt: skip
                if problem := unit_problem(unit):
                    fail(key, unit, problem)
        for channel, given in self.given_units.items():
            wanted = self.units.get(channel)
            if wanted is None:
                expected = f"a unit to convert to in {KEY}.units.{channel} too"
                fail(f"{KEY}.given_units.{channel}", given, expected)
            elif quantity(given) != quantity(wanted):
                expected = f"a {quantity(wanted)} unit like {KEY}.units.{channel} = {wanted!r}"
                fail(f"{KEY}.given_units.{channel}", given, expected)
