"""profile for images: readability, sizes and modes, channel statistics, brightness and
sharpness, label balance, duplicates and cross-split leaks, drift; JSON, PNG, a grid of
samples per class and HTML, and the quality gates of data.image.profile.gates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.config import PipelineConfig
from pipelines.core.profile_stage import publish_profile, split_summary
from pipelines.io import no_cache_files, read_split
from pipelines.layout import SPLITS, Layout
from pipelines.modalities.image.plugins.common import IMAGE, LABEL, clean_rules


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from pipelines.modalities.image.profile import check_image_gates, profile_image_splits

    settings = cfg.data.image.profile
    with no_cache_files():
        splits = {name: read_split(layout.split(layout.ingested, name)) for name in SPLITS}
        report = profile_image_splits(splits, clean_rules(cfg), cfg.data.num_proc)
        failures = check_image_gates(report, settings.gates)
        worst = ("unreadable_rate", "duplicate_rate", "leak_rate", "blurry_rate", "exposure_rate")
        train = report["splits"]["train"]
        summary = {
            **split_summary(report, worst),
            "train_channel_mean": train["channel_mean"],
            "train_channel_std": train["channel_std"],
            "label_psi": report["drift"]["label_psi"],
            "brightness_psi": report["drift"]["brightness_psi"],
        }

        def pages(report: dict[str, Any], failures: list[str], folder: Path) -> None:
            from pipelines.modalities.image.profile import (
                image_profile_html,
                image_profile_png,
                sample_grid_png,
            )

            image_profile_png(report, folder / "profile.png")
            grid = folder / "samples.png"
            per_class = settings.samples_per_class
            background = cfg.data.image.clean.background_rgb
            sample_grid_png(splits["train"], grid, per_class, IMAGE, LABEL, cfg.seed, background)
            png, html = folder / "profile.png", folder / "profile.html"
            image_profile_html(report, png, html, failures, grid)

        return publish_profile(layout, report, failures, summary, pages)
