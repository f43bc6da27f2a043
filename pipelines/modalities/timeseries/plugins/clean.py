"""clean for series: channels converted to the unit the model reads (data.timeseries.units),
then the rules of data.timeseries.clean (repeated timestamps, resampling to
the declared rate with short gaps filled, too short, stuck channels, spikes); every removed
series goes to quarantine with its rule, reason, split and figure, per-rule counts to
metrics."""

from __future__ import annotations

from functools import partial
from typing import Any

from pipelines.config import PipelineConfig
from pipelines.core.clean_stage import clean_and_publish
from pipelines.layout import Layout
from pipelines.modalities.timeseries.series import VALUES


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from pipelines.modalities.timeseries.rules import clean_series_splits, unit_conversions

    settings = cfg.data.timeseries
    channels = list(settings.channels)
    conversions, notes = unit_conversions(
        channels, dict(settings.units), dict(settings.given_units)
    )
    clean = partial(
        clean_series_splits,
        cfg=settings.clean,
        rate_hz=settings.sampling_rate_hz,
        channels=channels,
        conversions=conversions,
    )

    def figures(report: dict[str, Any]) -> dict[str, Any]:
        """Repairs, all splits together, and the rate every kept series now has."""
        names = ("gaps_filled", "spikes_replaced", "repeated_timestamps_dropped")
        totals = {name: sum(s[name] for s in report.values()) for name in names}
        # each converted channel's note, e.g. temperature: "degF -> degC"
        return {**totals, "sampling_rate_hz": settings.sampling_rate_hz, "units_converted": notes}

    features = {"features": [VALUES], "modality": "timeseries"}
    return clean_and_publish(layout, clean, figures, features)
