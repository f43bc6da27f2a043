"""export for images: the chosen ONNX variant with labels.json and a model card that states
the preprocessing (size, fit, channel order, mean, std), enough to score raw image files from
that folder alone (README: the scoring snippet). Test images written as PNG files and scored
from the finished folder must match the pipeline's scores of the same graph."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipelines.config import PipelineConfig, to_container
from pipelines.errors import PipelineError
from pipelines.io import read_json, read_split, staged_outputs, write_json
from pipelines.layout import Layout
from pipelines.modalities.image.baseline import BASELINES
from pipelines.modalities.image.plugins.common import (
    IMAGE,
    ONNX_VARIANTS,
    class_names,
    image_size,
    variant_file,
)

# test images scored from the finished folder (as PNG files) and compared with the pipeline's
PARITY_IMAGES = 64


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from pipelines.modalities.image.export_folder import (
        image_preprocessing,
        score_image_files,
        write_image_export,
    )
    from pipelines.modalities.image.lightning import image_probabilities, load_image_checkpoint
    from pipelines.modalities.image.onnx_variants import onnx_image_probabilities
    from pipelines.modalities.image.preprocess import decode_images, normalise
    from pipelines.selection import select_multiclass_variant

    module = load_image_checkpoint(layout.checkpoint)
    classes, size = class_names(layout), image_size(cfg)
    mean, std = list(module.hparams.mean), list(module.hparams.std)
    evaluation = read_json(layout.evaluate_metrics)
    available = [v for v in ONNX_VARIANTS if variant_file(layout.onnx_dir, v).is_file()]
    latency_file = layout.latency_report / "latency.json"
    variant, reason = select_multiclass_variant(cfg, evaluation, available, latency_file, "image")
    metrics = evaluation["variants"][f"onnx_{variant}"]
    card = {
        "name": f"{cfg.data.name}-{cfg.model.name}",
        "task": "image classification",
        "variant": variant,
        "selection": {"rule": cfg.export.select.rule, "reason": reason},
        "test_metrics": {
            "rows": evaluation["test_rows"],
            **{k: metrics.get(k) for k in _CARD_METRICS},
            "baselines_macro_f1": {
                name: evaluation["variants"][name]["macro_f1"]
                for name in BASELINES
                if name in evaluation["variants"]
            },
        },
        "config": {
            **{k: to_container(getattr(cfg, k)) for k in ("data", "model", "train", "quantize")},
            "seed": cfg.seed,
        },
    }
    model_file = variant_file(layout.onnx_dir, variant)
    card["sha256"] = {"model.onnx": _sha256(model_file)}
    clean_size = cfg.data.image.clean.size
    preprocessing = image_preprocessing(size, mean, std, clean_size.fit, clean_size.pad_value)
    with staged_outputs(layout.staging, layout.export_dir) as (folder,):
        write_image_export(folder, model_file, classes, preprocessing, card)
        # the folder alone, fed image files as a deployer would, must give what the pipeline
        # gives for the shipped graph on the same test images (its preprocessing is faithful);
        # how far that graph is from the trained model is evaluate's figure (macro-F1 kept),
        # recorded here per image for the card
        # the first PARITY_IMAGES test images, read and decoded once for both sides
        test = read_split(layout.split(layout.cleaned, "test"))
        test = test.select(range(min(PARITY_IMAGES, len(test))))
        from_folder = _folder_scores(folder, test, classes, score_image_files)
        x = normalise(decode_images(test, size, IMAGE), mean, std)
        # one batch, as the folder's scorer sends them: dynamic INT8 quantizes per batch
        expected = onnx_image_probabilities(model_file, x, batch_size=len(x))
        diff = float(np.abs(from_folder - expected).max())
        vs_pytorch = float(np.abs(from_folder - image_probabilities(module, x)).max())
        if diff > cfg.export.parity_atol:
            raise PipelineError(
                f"{folder}: scoring {len(x)} test image files from the export folder "
                f"({variant}) differs from the pipeline's own scores of {model_file.name} by "
                f"{diff:.2e}; expected at most {cfg.export.parity_atol} (config key "
                "'export.parity_atol'): the card's preprocessing is not what training did"
            )
        card_file = folder / "model_card.json"
        checks = {
            "folder_vs_variant_max_abs_diff": diff,
            "variant_vs_pytorch_max_abs_diff": vs_pytorch,
        }
        write_json(card_file, {**read_json(card_file), **checks})
    summary = {
        "variant": variant,
        "reason": reason,
        **checks,
        "files": sorted(p.name for p in layout.export_dir.iterdir()),
    }
    print(f"export: {variant} ({reason}) -> {layout.export_dir}")
    return summary


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


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()
