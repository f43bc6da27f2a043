"""profile for text: lengths, language mix, duplicates and leaks, abuse, label balance,
vocabulary and OOV, drift; PNG/HTML report and the quality gates of data.text.profile.gates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.config import PipelineConfig
from pipelines.core.profile_stage import publish_profile, split_summary
from pipelines.io import read_split
from pipelines.layout import SPLITS, Layout
from pipelines.modalities.text.plugins.common import clean_rules


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from pipelines.modalities.text.profile import check_text_gates, profile_text_splits

    splits = {name: read_split(layout.split(layout.ingested, name)) for name in SPLITS}
    settings = cfg.data.text.profile
    report = profile_text_splits(splits, clean_rules(cfg), settings.language_sample)
    failures = check_text_gates(report, settings.gates)
    worst = ("duplicate_rate", "leak_rate", "abusive_rate", "foreign_rate", "oov_rate")
    summary = {
        **split_summary(report, worst),
        "train_vocabulary_size": report["train_vocabulary_size"],
        "length_psi": report["drift"]["length_psi"],
        "label_psi": report["drift"]["label_psi"],
    }
    return publish_profile(layout, report, failures, summary, _pages)


def _pages(report: dict[str, Any], failures: list[str], folder: Path) -> None:
    from pipelines.modalities.text.profile import text_profile_html, text_profile_png

    text_profile_png(report, folder / "profile.png")
    text_profile_html(report, folder / "profile.png", folder / "profile.html", failures)
