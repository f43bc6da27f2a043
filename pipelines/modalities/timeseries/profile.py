"""The series profile: per split, sampling regularity against the declared rate, the shares
of series with a gap the clean stage could not fill, with a stuck channel and of missing
readings, series lengths, per-channel statistics; train-vs-test PSI of the labels and of each
channel's per-series mean and std; pictures of example series per class and of the average
amplitude spectrum per class. The rules' own settings say what counts as a gap or a stuck
channel, so the profile predicts what clean will remove."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.core import profile_page as page
from pipelines.modalities.timeseries.config import CleanConfig
from pipelines.modalities.timeseries.rules import longest_constant_run, reading_key
from pipelines.modalities.timeseries.series import LABEL, series_times, series_values

# an interval further than this from the declared period is irregular
IRREGULAR = 0.05
# a series is irregular when more than this share of its intervals are
IRREGULAR_SHARE = 0.01


def profile_series_splits(
    splits: dict[str, Any], channels: list[str], rate_hz: float, clean: CleanConfig
) -> dict[str, Any]:
    """Per split (train first): rows, labels, the rates the gates bound and the channels'
    per-series statistics; then the train-vs-test drift."""
    per_split, per_series = {}, {}
    train_keys: set[str] = set()
    for name, ds in splits.items():
        values, times = series_values(ds), series_times(ds)
        keys = [reading_key(v) for v in values]
        if name == "train":
            train_keys = set(keys)
        period = 1.0 / rate_hz
        irregular = gaps = flat = 0
        missing = total = 0
        for t, v in zip(times, values, strict=True):
            steps = np.diff(t)
            irregular += int(np.mean(np.abs(steps - period) > IRREGULAR * period) > IRREGULAR_SHARE)
            gaps += int((np.round(steps / period) - 1).max(initial=0) > clean.max_gap_samples)
            flat += int(any(longest_constant_run(ch[~np.isnan(ch)])[0] >= clean.stuck_samples
                            for ch in v))  # fmt: skip
            missing += int(np.isnan(v).sum())
            total += v.size
        stats = pd.DataFrame(
            {
                **{f"{c}_mean": [np.nanmean(v[i]) for v in values] for i, c in enumerate(channels)},
                **{f"{c}_std": [np.nanstd(v[i]) for v in values] for i, c in enumerate(channels)},
            }
        )
        per_series[name] = stats
        n = len(values)
        per_split[name] = {
            "rows": n,
            "labels": dict(sorted(pd.Series(ds[LABEL]).value_counts().items())),
            "irregular_rate": page.rate(irregular, n),
            "gap_rate": page.rate(gaps, n),
            "flat_rate": page.rate(flat, n),
            # readings repeating an earlier series' of the split exactly; of train's (leaks)
            "duplicate_rate": page.rate(n - len(set(keys)), n),
            "leak_rate": None
            if name == "train"
            else page.rate(sum(k in train_keys for k in keys), n),  # fmt: skip
            "missing_reading_rate": page.rate(missing, total),
            "samples": page.quantiles(np.array([v.shape[1] for v in values], dtype=float)),
            "channels": {
                c: {
                    "mean": page.quantiles(stats[f"{c}_mean"].dropna().to_numpy()),
                    "std": page.quantiles(stats[f"{c}_std"].dropna().to_numpy()),
                }
                for c in channels
            },  # fmt: skip
        }
    return {"splits": per_split, "drift": drift(splits, per_series)}


def drift(splits: dict[str, Any], per_series: dict[str, pd.DataFrame]) -> dict[str, Any]:
    from pipelines.profiling import categorical_psi, population_stability_index

    train, test = per_series["train"], per_series["test"]
    psi = {col: population_stability_index(train[col], test[col]) for col in train.columns}
    measured = {k: v for k, v in psi.items() if v is not None}
    return {
        "between": ["train", "test"],
        "label_psi": categorical_psi(
            pd.Series(splits["train"][LABEL]), pd.Series(splits["test"][LABEL])
        ),
        "channel_psi": max(measured.values(), default=0.0),
        "channel_statistic_psi": psi,
    }


def series_pictures(
    report: dict[str, Any],
    train: Any,
    channels: list[str],
    rate_hz: float,
    per_class: int,
    folder: Path,
    failures: list[str],
) -> None:
    """profile.png (label balance, series lengths), examples.png, spectrum.png, profile.html."""
    fig, axes = page.panels(2, 10)
    page.label_balance(axes[0], report["splits"])
    axes[0].set_title("label share per split")
    page.quantile_marks(axes[1], report["splits"], "samples", extremes=True)
    axes[1].set_title("samples per series")
    page.save_figure(fig, folder / "profile.png")
    values, labels = series_values(train), np.asarray(train[LABEL])
    classes = sorted(set(labels))
    examples_png(values, labels, classes, channels, rate_hz, per_class, folder / "examples.png")
    spectrum_png(values, labels, classes, channels, rate_hz, folder / "spectrum.png")
    pictures = "".join(
        page.png_tag(folder / f) for f in ("profile.png", "examples.png", "spectrum.png")
    )
    figures = ["rows", "irregular_rate", "gap_rate", "flat_rate", "missing_reading_rate",
               "duplicate_rate", "leak_rate"]  # fmt: skip
    page.write_profile_page(
        folder / "profile.html",
        "Series profile",
        report,
        failures,
        pictures,
        figures,
        {"Drift (train vs test)": report["drift"]},
    )


def examples_png(values, labels, classes, channels, rate_hz, per_class, path: Path) -> None:
    """A row per class, a column per channel: the first `per_class` series of the class."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(classes), len(channels), figsize=(3.2 * len(channels), 1.6 * len(classes)),
        squeeze=False,
    )  # fmt: skip
    for row, name in enumerate(classes):
        for i in np.flatnonzero(labels == name)[:per_class]:
            for c in range(len(channels)):
                series = values[i][c]
                axes[row, c].plot(np.arange(len(series)) / rate_hz, series, linewidth=0.5)
        axes[row, 0].set_ylabel(name, fontsize=8)
    for c, channel in enumerate(channels):
        axes[0, c].set_title(channel, fontsize=9)
    page.save_figure(fig, path)


def spectrum_png(values, labels, classes, channels, rate_hz, path: Path) -> None:
    """Per channel, each class's mean amplitude spectrum (NaN readings as the channel mean,
    series cut to the shortest one so the frequency bins agree)."""
    import matplotlib.pyplot as plt

    length = min(v.shape[1] for v in values)
    freqs = np.fft.rfftfreq(length, 1.0 / rate_hz)
    fig, axes = plt.subplots(1, len(channels), figsize=(3.6 * len(channels), 3), squeeze=False)
    for name in classes:
        chosen = [values[i][:, :length] for i in np.flatnonzero(labels == name)]
        stacked = np.stack(chosen).astype(np.float64)
        means = np.nanmean(stacked, axis=2, keepdims=True)
        filled = np.where(np.isnan(stacked), means, stacked) - means
        amplitude = np.abs(np.fft.rfft(filled, axis=2)).mean(axis=0) / length
        for c in range(len(channels)):
            axes[0, c].semilogy(freqs[1:], amplitude[c, 1:] + 1e-9, linewidth=0.7, label=name)
    for c, channel in enumerate(channels):
        axes[0, c].set_title(f"{channel}: mean spectrum", fontsize=9)
        axes[0, c].set_xlabel("Hz")
    axes[0, -1].legend(fontsize=6)
    page.save_figure(fig, path)
