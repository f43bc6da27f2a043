"""export for series: the chosen ONNX variant with labels.json and a model card stating the
preprocessing (channels, sampling rate, window, the train split's mean and std), enough to
score raw sensor windows from that folder alone, and examples/windows.json (test windows of
different classes). Test windows scored from the finished folder must match the pipeline's
scores of the same graph."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipelines.config import PipelineConfig
from pipelines.io import write_json
from pipelines.layout import Layout
from pipelines.modalities.timeseries.baseline import BASELINES
from pipelines.modalities.timeseries.plugins.common import class_names, split_windows

PARITY_WINDOWS = 64  # test windows scored from the finished folder


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from pipelines.core.export_folder import (
        EXAMPLES,
        FolderExport,
        example_rows,
        export_multiclass,
        require_parity,
    )
    from pipelines.core.onnx_variants import batch_scorer
    from pipelines.drift_reference import write_profile
    from pipelines.modalities.timeseries.drift_features import (
        series_drift_features,
        series_drift_rows,
    )
    from pipelines.modalities.timeseries.export_folder import (
        score_windows,
        series_preprocessing,
        write_series_export,
    )
    from pipelines.modalities.timeseries.lightning import load_series_checkpoint
    from pipelines.modalities.timeseries.onnx_variants import series_feed
    from pipelines.modalities.timeseries.series import normalise

    hp = load_series_checkpoint(layout.checkpoint).hparams
    classes = class_names(layout)
    window = cfg.data.timeseries.window
    mean, std = list(hp.mean), list(hp.std)
    preprocessing = series_preprocessing(
        list(hp.channels), hp.sampling_rate_hz, int(hp.window), window.stride, mean, std
    )
    # the unit each channel's readings must be in (clean converted given_units to these)
    preprocessing["units"] = dict(cfg.data.timeseries.units)

    def check(folder: Path, variant: str, model_file: Path) -> dict[str, float]:
        raw, _ = split_windows(layout.split(layout.cleaned, "test"), cfg, classes)
        raw = raw[:PARITY_WINDOWS]
        scored = score_windows(folder, raw)
        from_folder = np.array([[s["probabilities"][c] for c in classes] for s in scored])
        expected = batch_scorer(model_file, 0, series_feed, 256)(normalise(raw, mean, std))
        against, rows = (
            f"the pipeline's own scores of {model_file.name}",
            f"{len(raw)} test windows",
        )
        diff = require_parity(
            folder, variant, from_folder, expected, rows, against, "export.parity_atol",
            cfg.export.parity_atol,
        )  # fmt: skip
        return {"folder_vs_variant_max_abs_diff": diff}

    def write(folder: Path, model_file: Path, card: dict[str, Any]) -> None:
        write_series_export(folder, model_file, classes, preprocessing, card)
        # examples/windows.json: raw test windows (channels x samples) of different classes
        raw, labels = split_windows(layout.split(layout.cleaned, "test"), cfg, classes)
        rows = example_rows([int(v) for v in labels])
        write_json(
            folder / EXAMPLES / "windows.json",
            {"windows": raw[rows].tolist(), "labels": [classes[int(labels[r])] for r in rows]},
        )
        # the server's drift gauges compare traffic with the train windows, in the units the
        # card asks clients for (clean converted the given units to them)
        train, _ = split_windows(layout.split(layout.cleaned, "train"), cfg, classes)
        features = series_drift_features([str(c) for c in preprocessing["channels"]])
        write_profile(folder, series_drift_rows(train), features, f"{layout.cleaned.name}/train")

    return export_multiclass(cfg, layout, FolderExport("timeseries", _card_metrics, write, check))


def _card_metrics(evaluation: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        "accuracy": metrics["accuracy"],
        "macro_f1": metrics["macro_f1"],
        "class_recall": {name: m["recall"] for name, m in metrics["per_class"].items()},
        "baselines_macro_f1": {
            name: evaluation["variants"][name]["macro_f1"]
            for name in BASELINES
            if name in evaluation["variants"]
        },
    }
