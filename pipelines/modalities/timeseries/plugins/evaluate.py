"""evaluate for series: accuracy, macro-F1, per-class precision and recall (a missed fault
is a class's recall) and a confusion matrix per variant on the test windows (series the model
never saw); MiniRocket + ridge and catch22 + boosted trees fitted on the same train windows;
latency at
evaluate.latency_batch_sizes, every variant timed round-robin (the baselines with their
feature transforms)."""

from __future__ import annotations

from typing import Any

import torch

from pipelines.config import PipelineConfig
from pipelines.layout import Layout
from pipelines.modalities.timeseries.plugins.common import class_names, split_windows


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from pipelines.core.multiclass_evaluate import Baseline, MulticlassTest, evaluate_multiclass
    from pipelines.lightning_module import multiclass_probabilities
    from pipelines.modalities.timeseries.baseline import class_probabilities, fit_baselines
    from pipelines.modalities.timeseries.lightning import load_series_checkpoint
    from pipelines.modalities.timeseries.onnx_variants import series_feed
    from pipelines.modalities.timeseries.series import normalise
    from pipelines.models.moe import count_parameters

    torch.set_num_threads(cfg.evaluate.threads)  # as the ONNX sessions: evaluate_multiclass
    module = load_series_checkpoint(layout.checkpoint)
    mean, std = list(module.hparams.mean), list(module.hparams.std)
    classes = class_names(layout)
    raw_test, y_test = split_windows(layout.split(layout.cleaned, "test"), cfg, classes)
    raw_val, y_val = split_windows(layout.split(layout.cleaned, "val"), cfg, classes)
    raw_train, y_train = split_windows(layout.augmented_train, cfg, classes)
    baselines = fit_baselines(raw_train, y_train, cfg.seed)
    n = len(classes)
    test = MulticlassTest(
        modality="timeseries",
        classes=classes,
        y=y_test,
        x=normalise(raw_test, mean, std),
        onnx_feed=series_feed,
        pytorch=lambda x: multiclass_probabilities(module, x),
        parameters=count_parameters(module.model),
        baselines={
            name: Baseline(
                probabilities=class_probabilities(model, raw_test, n),
                predict=lambda b, m=model: class_probabilities(m, raw_test[b], n),
            )
            for name, model in baselines.items()
        },
        preprocessing=("normalise_only", lambda b: normalise(raw_test[b], mean, std)),
        validation=(normalise(raw_val, mean, std), y_val),
        facts={"window": int(module.hparams.window), "train_windows": len(y_train)},
    )
    return evaluate_multiclass(cfg, layout, test)
