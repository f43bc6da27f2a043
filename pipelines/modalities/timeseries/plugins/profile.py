"""profile for series: sampling regularity, gap, flat-line and missing-reading rates, series
lengths, per-channel statistics, train-vs-test PSI of labels and channel statistics; JSON,
PNGs (label balance, example series per class, mean spectrum per class), HTML, and the
quality gates of data.timeseries.profile.gates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.config import PipelineConfig
from pipelines.core.profile_stage import publish_profile, split_summary
from pipelines.io import no_cache_files, read_split
from pipelines.layout import SPLITS, Layout


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from pipelines.core.profile_page import check_gates
    from pipelines.modalities.timeseries.profile import profile_series_splits, series_pictures

    settings = cfg.data.timeseries
    channels, rate_hz = list(settings.channels), settings.sampling_rate_hz
    with no_cache_files():
        splits = {name: read_split(layout.split(layout.ingested, name)) for name in SPLITS}
        report = profile_series_splits(splits, channels, rate_hz, settings.clean)
        failures = check_gates(report, settings.profile.gates)
        worst = ("irregular_rate", "gap_rate", "flat_rate", "duplicate_rate", "leak_rate")
        summary = {
            **split_summary(report, worst),
            "label_psi": report["drift"]["label_psi"],
            "channel_psi": report["drift"]["channel_psi"],
        }

        def pages(report: dict[str, Any], failures: list[str], folder: Path) -> None:
            per_class = settings.profile.examples_per_class
            train = splits["train"]
            series_pictures(report, train, channels, rate_hz, per_class, folder, failures)

        return publish_profile(layout, report, failures, summary, pages)
