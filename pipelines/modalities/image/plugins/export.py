"""export for images: the chosen ONNX variant with labels.json and a model card that states
the preprocessing (size, fit, channel order, mean, std), enough to score raw image files from
that folder alone (README: the scoring snippet). Test images written as PNG files and scored
from the finished folder must match the pipeline's scores of the same graph.
pipelines.core.export_folder does the selecting, the card and the writing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipelines.config import PipelineConfig
from pipelines.io import read_split
from pipelines.layout import Layout
from pipelines.modalities.image.baseline import BASELINES
from pipelines.modalities.image.plugins.common import IMAGE, LABEL, class_names, image_size

# test images scored from the finished folder (as PNG files) and compared with the pipeline's
PARITY_IMAGES = 64
# train images profiled for the server's drift gauges (evenly spread over the split): bins of
# 10 quantiles need no more, and decoding every image of a large split would not change them
DRIFT_REFERENCE_IMAGES = 2000


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    import datasets

    from pipelines.core.export_folder import (
        FolderExport,
        example_rows,
        export_multiclass,
        require_parity,
    )
    from pipelines.drift_reference import write_profile
    from pipelines.lightning_module import multiclass_probabilities
    from pipelines.modalities.image.drift_features import FEATURES, image_reference_rows
    from pipelines.modalities.image.export_folder import (
        image_preprocessing,
        score_image_files,
        write_image_examples,
        write_image_export,
    )
    from pipelines.modalities.image.lightning import load_image_checkpoint
    from pipelines.modalities.image.onnx_variants import onnx_image_probabilities
    from pipelines.modalities.image.preprocess import decode_images, normalise

    module = load_image_checkpoint(layout.checkpoint)
    classes, size = class_names(layout), image_size(cfg)
    mean, std = list(module.hparams.mean), list(module.hparams.std)
    clean_size = cfg.data.image.clean.size
    background = cfg.data.image.clean.background_rgb
    preprocessing = image_preprocessing(
        size, mean, std, clean_size.fit, clean_size.pad_value, background
    )

    def check(folder: Path, variant: str, model_file: Path) -> dict[str, float]:
        # the folder alone, fed image files as a deployer would, must give what the pipeline
        # gives for the shipped graph on the same test images (its preprocessing is faithful);
        # how far that graph is from the trained model is evaluate's figure (macro-F1 kept),
        # recorded here per image for the card
        # the first PARITY_IMAGES test images, read and decoded once for both sides
        test = read_split(layout.split(layout.cleaned, "test"))
        test = test.select(range(min(PARITY_IMAGES, len(test))))
        from_folder = _folder_scores(folder, test, classes, score_image_files)
        x = normalise(decode_images(test, size, IMAGE, background), mean, std)
        # one batch, as the folder's scorer sends them: dynamic INT8 quantizes per batch
        expected = onnx_image_probabilities(model_file, x, batch_size=len(x))
        vs_pytorch = float(np.abs(from_folder - multiclass_probabilities(module, x)).max())
        against = f"the pipeline's own scores of {model_file.name}"
        atol = cfg.export.parity_atol
        # a gap here means the card's preprocessing is not what training did
        rows = f"{len(x)} test image files"
        diff = require_parity(
            folder, variant, from_folder, expected, rows, against, "export.parity_atol", atol
        )
        return {
            "folder_vs_variant_max_abs_diff": diff,
            "variant_vs_pytorch_max_abs_diff": vs_pytorch,
        }

    def write(folder: Path, model_file: Path, card: dict[str, Any]) -> None:
        write_image_export(folder, model_file, classes, preprocessing, card)
        test = read_split(layout.split(layout.cleaned, "test"))
        picked = test.select(example_rows([str(v) for v in test[LABEL][:]]))
        write_image_examples(folder, picked[IMAGE][:], [str(v) for v in picked[LABEL][:]])
        # the server's drift gauges compare traffic with the raw train files (what clients
        # send: their own sizes, before clean's size rule)
        raw = read_split(layout.split(layout.ingested, "train"))
        raw = raw.cast_column(IMAGE, datasets.Image(decode=False))[IMAGE][:]
        files = [cell["bytes"] for cell in raw if cell and cell.get("bytes")]
        rows = image_reference_rows(files, preprocessing, DRIFT_REFERENCE_IMAGES)
        write_profile(folder, rows, FEATURES, f"{layout.ingested.name}/train")

    return export_multiclass(cfg, layout, FolderExport("image", _card_metrics, write, check))


def _card_metrics(evaluation: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        **{k: metrics.get(k) for k in _CARD_METRICS},
        "baselines_macro_f1": {
            name: evaluation["variants"][name]["macro_f1"]
            for name in BASELINES
            if name in evaluation["variants"]
        },
    }


_CARD_METRICS = (
    "accuracy",
    "macro_f1",
    "macro_f1_retained_vs_fp32",
    "defect_recall",
    "precision_at_defect_recall",
    "defect_class_recall",
)


def _folder_scores(folder: Path, test: Any, classes: list[str], score: Any) -> np.ndarray:
    """The folder's probabilities for the `test` images, written out as PNG files and read
    back through the export's own scorer."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, image in enumerate(test[IMAGE][:]):
            path = Path(tmp) / f"{i:03d}.png"
            image.save(path, format="PNG")
            paths.append(path)
        scored = score(folder, paths)
    return np.array([[s["probabilities"][c] for c in classes] for s in scored])
