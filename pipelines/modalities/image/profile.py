"""The image profile: what a team asks of an image set before trusting it. Per split: how
many images cannot be read, the sizes and modes they come in, per-channel mean and std (the
normalisation a model will use), brightness and sharpness, the blurry and badly exposed rates,
label balance, exact and perceptual duplicate rates; across splits: duplicate leaks of
val/test into train and the train-vs-test drift of label and brightness. Gates declared in
YAML turn any of these into a failed stage; a PNG, a grid of samples per class and an HTML
page sit beside the JSON.

Every figure comes from the cleaning rules' own reading of an image
(pipelines/modalities/image/analysis.py) with the rules' settings, so what the profile counts is
what
clean would remove (blur and exposure are judged with their thresholds even when the rules
are off: the profile is where one decides to switch them on). Channel statistics, brightness
and sharpness are of the normalised image (target mode and size), what the model will see.
"""

from __future__ import annotations

from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pandas as pd

from pipelines.core import profile_page as page
from pipelines.core.dedup import exact_pass
from pipelines.modalities.image.analysis import analyse, decode, raw_bytes
from pipelines.modalities.image.config import ImageCleanConfig, ImageGatesConfig
from pipelines.modalities.image.dedup import hamming_pass
from pipelines.modalities.image.rules import undecoded
from pipelines.modalities.image.transparency import on_background
from pipelines.profiling import categorical_psi, population_stability_index

_FACTS = datasets.Features(
    {
        "readable": datasets.Value("bool"),
        "mode": datasets.Value("string"),
        "size": datasets.Value("string"),
        "brightness": datasets.Value("float32"),
        "laplacian_var": datasets.Value("float32"),
        "channel_mean": datasets.Sequence(datasets.Value("float64")),
        "channel_sq": datasets.Sequence(datasets.Value("float64")),
        "key": datasets.Value("string"),
        "phash": datasets.Value("binary"),
    }
)


def _facts_batch(batch: dict[str, list], cfg: ImageCleanConfig) -> dict[str, list]:
    out: dict[str, list] = {name: [] for name in _FACTS}
    for cell in batch[cfg.image_column]:
        f = analyse(raw_bytes(cell), cfg)
        out["readable"].append(not f.error)
        out["mode"].append(f.mode)
        out["size"].append(f"{f.width}x{f.height}" if not f.error else "")
        out["brightness"].append(f.brightness)
        out["laplacian_var"].append(f.laplacian_var)
        out["channel_mean"].append(list(f.channel_mean))
        out["channel_sq"].append(list(f.channel_sq))
        out["key"].append(f.content_hash)
        out["phash"].append(f.perceptual_hash)
    return out


def _facts(ds: datasets.Dataset, cfg: ImageCleanConfig, num_proc: int | None) -> pd.DataFrame:
    raw = undecoded(ds, cfg.image_column).select_columns([cfg.image_column])
    facts = raw.map(
        partial(_facts_batch, cfg=cfg),
        batched=True,
        batch_size=200,
        num_proc=num_proc,
        remove_columns=[cfg.image_column],
        features=_FACTS,
        load_from_cache_file=False,
        desc="image profile",
    )
    return facts.to_pandas()


def profile_image_splits(
    splits: dict[str, datasets.Dataset], cfg: ImageCleanConfig, num_proc: int | None = None
) -> dict[str, Any]:
    """The report (JSON-ready), with the cleaning rules' settings (`cfg`) deciding what counts
    as blurry, badly exposed or a perceptual duplicate. `splits` in train, val, test order."""
    names = list(splits)
    label_column = cfg.label_column or "label"
    facts = {name: _facts(ds, cfg, num_proc) for name, ds in splits.items()}
    labels = {name: [str(v) for v in ds[label_column][:]] for name, ds in splits.items()}
    readable = [f["readable"].tolist() for f in (facts[n] for n in names)]
    exact = exact_pass([facts[n]["key"].tolist() for n in names], readable)
    remaining = [[v == "" for v in verdicts] for verdicts in exact]  # as clean does
    width = (cfg.dedup.hash_size**2 + 7) // 8
    hashes = [_hash_matrix(facts[n]["phash"], width) for n in names]
    near = hamming_pass(hashes, remaining, cfg.dedup.max_distance)

    report: dict[str, Any] = {
        "thresholds": {  # what the rates were judged with (the rules' settings)
            "min_laplacian_var": cfg.blur.min_laplacian_var,
            "min_brightness": cfg.exposure.min_brightness,
            "max_brightness": cfg.exposure.max_brightness,
            "max_distance": cfg.dedup.max_distance,
        },
        "splits": {},
    }
    for i, name in enumerate(names):
        f = facts[name]
        ok = f[f["readable"]]
        n = len(f)
        brightness = ok["brightness"].to_numpy(dtype=float)
        sharpness = ok["laplacian_var"].to_numpy(dtype=float)
        badly_exposed = (brightness < cfg.exposure.min_brightness) | (
            brightness > cfg.exposure.max_brightness
        )
        mean, std = _channel_stats(ok)
        report["splits"][name] = {
            "rows": n,
            "unreadable": int(n - len(ok)),
            "unreadable_rate": page.rate(n - len(ok), n),
            "sizes": dict(Counter(ok["size"]).most_common()),
            "modes": dict(Counter(ok["mode"]).most_common()),
            "channel_mean": mean,
            "channel_std": std,
            "brightness": page.quantiles(brightness),
            "laplacian_var": page.quantiles(sharpness),
            # blur is judged after exposure, as clean does: a black frame is not "blurry"
            "blurry_rate": page.rate(
                int(((sharpness < cfg.blur.min_laplacian_var) & ~badly_exposed).sum()), n
            ),
            "exposure_rate": page.rate(int(badly_exposed.sum()), n),
            "labels": dict(sorted(Counter(labels[name]).items())),
            "exact_duplicate_rate": page.rate(exact[i].count("duplicate"), n),
            "near_duplicate_rate": page.rate(near[i].count("duplicate"), n),
            "duplicate_rate": page.rate(
                exact[i].count("duplicate") + near[i].count("duplicate"), n
            ),
            "exact_leak_rate": page.rate(exact[i].count("leak"), n),
            "near_leak_rate": page.rate(near[i].count("leak"), n),
            "leak_rate": page.rate(exact[i].count("leak") + near[i].count("leak"), n),
        }
    train, test = names[0], names[-1]
    brightness_of = {k: facts[k].loc[facts[k]["readable"], "brightness"] for k in (train, test)}
    report["drift"] = {
        "label_psi": categorical_psi(pd.Series(labels[train]), pd.Series(labels[test])),
        "brightness_psi": population_stability_index(
            brightness_of[train].astype(float), brightness_of[test].astype(float)
        ),
        "between": [train, test],
    }
    return report


def _hash_matrix(cells: pd.Series, width: int) -> np.ndarray:
    zeros = b"\0" * width
    joined = b"".join(c or zeros for c in cells)
    return np.frombuffer(joined, dtype=np.uint8).reshape(-1, width)


def _channel_stats(ok: pd.DataFrame) -> tuple[list[float], list[float]]:
    """Pooled per-channel mean and std over every pixel (all images share the target size,
    so the mean of per-image means is the pixel mean)."""
    if ok.empty:
        return [], []
    means = np.stack(ok["channel_mean"].to_numpy()).mean(axis=0)
    squares = np.stack(ok["channel_sq"].to_numpy()).mean(axis=0)
    stds = np.sqrt(np.maximum(squares - means**2, 0.0))
    return [float(v) for v in means], [float(v) for v in stds]


def check_image_gates(report: dict[str, Any], gates: ImageGatesConfig) -> list[str]:
    """One line per gate missed, naming the split, the figure and the gate's key."""
    return page.check_gates(report, gates)


# --- pictures ------------------------------------------------------------------------------------


def image_profile_png(report: dict[str, Any], path: Path) -> None:
    """Label balance, brightness and sharpness quantiles, and the defect rates per split."""
    splits = report["splits"]
    names = list(splits)
    fig, axes = page.panels(4, 19)
    page.label_balance(axes[0], splits)
    width = 0.8 / max(1, len(names))
    axes[0].set_title("label balance (share of rows)")
    axes[0].legend()
    limits = report["thresholds"]
    for ax, figure, title, lines in (
        (axes[1], "brightness", "mean brightness (median, p5-p95, min-max)",
         (limits["min_brightness"], limits["max_brightness"])),
        (axes[2], "laplacian_var", "sharpness: variance of Laplacian",
         (limits["min_laplacian_var"],)),
    ):  # fmt: skip
        for value in lines:  # the rules' thresholds: what lies beyond is removed
            ax.axhline(value, color="tab:red", ls="--", lw=1)
        page.quantile_marks(ax, splits, figure, extremes=True)
        ax.set_xlim(-0.5, len(names) - 0.5)
        ax.set_title(title)
    axes[2].set_yscale("log")
    rates = ("unreadable_rate", "duplicate_rate", "leak_rate", "blurry_rate", "exposure_rate")
    for offset, name in enumerate(names):
        values = [splits[name][r] for r in rates]
        axes[3].bar(np.arange(len(rates)) + offset * width, values, width, label=name)
    ticks = [r.replace("_rate", "") for r in rates]
    axes[3].set_xticks(np.arange(len(rates)) + 0.4 - width / 2, ticks, rotation=45, ha="right")
    axes[3].set_title("defect rates")
    page.save_figure(fig, path)


def sample_grid_png(
    ds: datasets.Dataset,
    path: Path,
    per_class: int = 8,
    image_column: str = "image",
    label_column: str = "label",
    seed: int = 0,
    background: tuple[int, ...] = (255, 255, 255),
) -> None:
    """A grid with one row per class and up to `per_class` readable images in it (a seeded
    sample): the look at the data that numbers do not replace. Transparent pixels show on
    `background` (data.image.clean.background), as the model will see them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    raw = undecoded(ds, image_column)
    labels = [str(v) for v in raw[label_column][:]]
    order = np.random.default_rng(seed).permutation(len(raw))
    picks: dict[str, list[int]] = {label: [] for label in sorted(set(labels))}
    for row in order.tolist():
        if len(picks[labels[row]]) < per_class * 2:  # spares for unreadable ones
            picks[labels[row]].append(row)
    fig, axes = plt.subplots(
        len(picks), per_class, figsize=(1.3 * per_class, 1.4 * len(picks)), squeeze=False
    )
    for r, (label, rows) in enumerate(picks.items()):
        images = []
        for row in sorted(rows):
            image, _ = decode(raw_bytes(raw[row][image_column]), verify=False, max_pixels=10**8)
            if image is not None:
                images.append(on_background(image, background))
            if len(images) == per_class:
                break
        for c, ax in enumerate(axes[r]):
            ax.axis("off")
            if c < len(images):
                ax.imshow(np.asarray(images[c]))
        axes[r][0].set_title(f"{label} ({labels.count(label)})", loc="left", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def image_profile_html(
    report: dict[str, Any],
    png: Path,
    path: Path,
    failures: list[str],
    grid_png: Path | None = None,
) -> None:
    figures = (
        "rows",
        "unreadable_rate",
        "duplicate_rate",
        "leak_rate",
        "blurry_rate",
        "exposure_rate",
        "channel_mean",
        "channel_std",
    )
    pictures = [png] + ([grid_png] if grid_png is not None else [])
    tags = "".join(f"{page.png_tag(p)}<br>" for p in pictures)
    as_given = {
        name: {"sizes": stats["sizes"], "modes": stats["modes"]}
        for name, stats in report["splits"].items()
    }
    sections = {"Sizes and modes (as given)": as_given, "Drift": report["drift"]}
    page.write_profile_page(path, "Image profile", report, failures, tags, figures, sections)
