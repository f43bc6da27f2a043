"""The export stage for a multi-class model, whatever its modality: the variant export.select
picks, copied into a folder with labels.json and a model card (what it is, why this
variant, its test figures, the config, file hashes, the graph's inputs and outputs), and a
check that scores the finished folder with its own stand-alone scorer.

A modality supplies a FolderExport: its task's name, its card figures, its preprocessing
artifact (a tokenizer file; none for images, whose preprocessing the card states), its
folder writer and the check it runs on the written folder.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.config import PipelineConfig, to_container
from pipelines.core.folder_scoring import CARD, LABELS, MODEL, PROBABILITIES
from pipelines.core.onnx_variants import available_variants, variant_file
from pipelines.errors import PipelineError
from pipelines.io import read_json, staged_outputs, write_json
from pipelines.layout import Layout


@dataclass(frozen=True)
class FolderExport:
    """What one modality brings to the export stage."""

    # as export.select names it (pipelines.selection.select_multiclass_variant); the card's
    # task is "<modality> classification"
    modality: str
    # the card's test figures of the shipped variant: (evaluate's report, the variant's metrics)
    test_metrics: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]
    # writes the folder: (folder, the variant's ONNX file, the card so far)
    write: Callable[[Path, Path, dict[str, Any]], None]
    # checks the written folder: (folder, variant, its ONNX file) -> figures for the card;
    # raises PipelineError when the folder does not score as it should
    check: Callable[[Path, str, Path], dict[str, float]]
    # files shipped beside the graph (its name in the folder -> where quantize left it)
    artifacts: dict[str, Path] = field(default_factory=dict)


def export_multiclass(cfg: PipelineConfig, layout: Layout, spec: FolderExport) -> dict[str, Any]:
    """Select, write and check the export folder; the stage's summary."""
    from pipelines.selection import select_multiclass_variant

    evaluation = read_json(layout.evaluate_metrics)
    available = available_variants(layout.onnx_dir)
    latency_file = layout.latency_report / "latency.json"
    variant, reason = select_multiclass_variant(
        cfg, evaluation, available, latency_file, spec.modality
    )
    metrics = evaluation["variants"][f"onnx_{variant}"]
    card: dict[str, Any] = {
        "name": f"{cfg.data.name}-{cfg.model.name}",
        "task": f"{spec.modality} classification",
        "variant": variant,
        "selection": {"rule": cfg.export.select.rule, "reason": reason},
        "test_metrics": {"rows": evaluation["test_rows"], **spec.test_metrics(evaluation, metrics)},
        "config": {
            **{k: to_container(getattr(cfg, k)) for k in ("data", "model", "train", "quantize")},
            "seed": cfg.seed,
        },
    }
    model_file = variant_file(layout.onnx_dir, variant)
    card["sha256"] = {
        MODEL: _sha256(model_file),
        **{name: _sha256(path) for name, path in spec.artifacts.items()},
    }
    with staged_outputs(layout.staging, layout.export_dir) as (folder,):
        spec.write(folder, model_file, card)
        checks = spec.check(folder, variant, model_file)
        card_file = folder / CARD
        write_json(card_file, {**read_json(card_file), **checks})
    summary = {
        "variant": variant,
        "reason": reason,
        **checks,
        "files": sorted(p.name for p in layout.export_dir.iterdir()),
    }
    print(f"export: {variant} ({reason}) -> {layout.export_dir}")
    return summary


def require_parity(
    folder: Path,
    variant: str,
    from_folder: Any,
    expected: Any,
    rows: str,
    against: str,
    atol_key: str,
    atol: float,
) -> float:
    """The largest gap between the probabilities the finished folder gives (`from_folder`)
    and `expected` on the same `rows` (e.g. "32 test texts"); above `atol` it fails naming the
    folder, the variant, what it was compared `against` and the config key of the bound."""
    import numpy as np

    diff = float(np.abs(np.asarray(from_folder) - np.asarray(expected)).max())
    if diff > atol:
        raise PipelineError(
            f"{folder}: scoring {rows} from the export folder ({variant}) differs from "
            f"{against} by {diff:.2e}; expected at most {atol} (config key '{atol_key}')"
        )
    return diff


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def checked_graph(onnx_path: Path, class_names: list[str], unit: str) -> Any:
    """The graph of `onnx_path` (onnx.GraphProto), refused before anything is written when its
    output width is not the number of class names, since labels.json would then name the
    wrong columns. `unit`: what one row of input is ("text", "image")."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    width = graph.output[0].type.tensor_type.shape.dim[1].dim_value
    if width != len(class_names):
        raise PipelineError(
            f"{onnx_path}: the graph outputs {width} probabilities per {unit} but "
            f"{len(class_names)} class names were given; expected one name per column"
        )
    return graph


def write_folder(
    folder: Path,
    onnx_path: Path,
    *,
    class_names: list[str],
    card: dict[str, Any],
    inputs: dict[str, Any],
    artifacts: dict[str, Path] | None = None,
) -> None:
    """model.onnx, the `artifacts` (name in the folder -> file), labels.json, and the card:
    `card` (the modality's preprocessing section last), the graph's `inputs`, its output."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(onnx_path, folder / MODEL)
    for name, path in (artifacts or {}).items():
        shutil.copyfile(path, folder / name)
    _write_json(folder / LABELS, {"labels": list(class_names)})
    outputs = {
        PROBABILITIES: {
            "dtype": "float32",
            "shape": ["batch", len(class_names)],
            "description": f"class probabilities, each row sums to 1; column i is "
            f"{LABELS}'s labels[i]",
        },
    }
    _write_json(folder / CARD, {**card, "inputs": inputs, "outputs": outputs})


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
