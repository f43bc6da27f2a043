"""ingest for images: the defect simulator, or a folder of class sub-folders (the `imagefolder`
builder of `datasets`) -> canonical (image, label) splits with the image bytes embedded (the
Arrow files do not point back at the folder), and the label map in schema.json.

Nothing is decoded here: an unreadable image is a row for clean to quarantine with its reason,
not an exception in ingest."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.config import PipelineConfig
from pipelines.core.ingest import check_simulator_rows, check_source_columns, split_and_publish
from pipelines.errors import PipelineError
from pipelines.io import no_cache_files
from pipelines.layout import Layout
from pipelines.modalities.image.plugins.common import IMAGE, LABEL
from pipelines.progress import stage_steps

if TYPE_CHECKING:
    from datasets import Dataset

# what the imagefolder builder reads as images; other files in a class folder are ingested as
# rows too (clean quarantines them as unreadable), so none disappears without a trace
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
)


def run(cfg: PipelineConfig, layout: Layout) -> dict[str, int]:
    data = cfg.data
    with stage_steps("ingest", 4) as step, no_cache_files():
        raw, origin = _load_images(cfg)
        step(f"read {len(raw)} images from {origin}")
        table = conform_images(raw, data.schema.image or IMAGE, data.schema.label, origin)
        classes = sorted(set(table[LABEL][:]))
        step(f"{len(classes)} classes")
        # the label map: model output i is classes[i]
        facts = {"modality": "image", "classes": classes}
        return split_and_publish(cfg, layout, table, origin, step, facts)


def _load_images(cfg: PipelineConfig) -> tuple[Dataset, str]:
    from pipelines.modalities.image.simulator import simulate_images

    source = cfg.data.source
    if source.kind == "simulator":
        check_simulator_rows(source, "images")
        simulated = simulate_images(
            source.rows, cfg.seed, cfg.data.image.simulator, num_proc=cfg.data.num_proc
        )
        return simulated, "simulator"
    if source.kind == "imagefolder":
        return read_image_folder(source.path), f"imagefolder {source.path}"
    if source.kind == "digits":
        return sklearn_digits(), "scikit-learn load_digits (UCI optical handwritten digits)"
    raise PipelineError(
        f"config key 'data.source.kind' = {source.kind!r} with data.modality = image: expected "
        "simulator, imagefolder or digits"
    )


def sklearn_digits() -> Dataset:
    """The 1,797 8x8 handwritten digits scikit-learn ships (a real image set on disk: UCI
    "Optical Recognition of Handwritten Digits", CC BY 4.0), as grey PNGs scaled from 0-16 to
    0-255, labelled "0".."9"."""
    import io

    import datasets
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    cells = []
    for pixels in digits.images:
        buffer = io.BytesIO()
        Image.fromarray(np.round(pixels * (255 / 16)).astype(np.uint8)).save(buffer, "PNG")
        cells.append({"bytes": buffer.getvalue(), "path": None})
    features = datasets.Features({IMAGE: datasets.Image(), LABEL: datasets.Value("string")})
    labels = [str(int(t)) for t in digits.target]
    return datasets.Dataset.from_dict({IMAGE: cells, LABEL: labels}, features=features)


def read_image_folder(path: str | None) -> Dataset:
    """Every file under <path>/<class>/ as a row (image bytes, label = the folder's name).
    Fails naming the folder when it is missing, has fewer than two class folders, or has an
    empty class folder (a class with no example cannot be learned or evaluated)."""
    import datasets

    folder = Path(path or "")
    if not path or not folder.is_dir():
        raise PipelineError(
            f"config key 'data.source.path' = {path!r}: expected a folder with one sub-folder "
            "of images per class"
        )
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise PipelineError(
            f"{folder}: {len(classes)} class folder(s) "
            f"({', '.join(p.name for p in classes) or 'none'}); expected at least 2 "
            "sub-folders, one per class"
        )
    for class_dir in classes:
        if not any(p.is_file() for p in class_dir.rglob("*") if not p.name.startswith(".")):
            raise PipelineError(
                f"{class_dir}: empty class folder; expected at least one image per class "
                "(remove the folder or add images)"
            )
    built = datasets.load_dataset("imagefolder", data_dir=str(folder), split="train")
    built = built.cast_column("image", datasets.Image(decode=False))
    names = built.features["label"].names
    images = built.map(
        _embedded,
        fn_kwargs={"names": names},
        batched=True,
        remove_columns=built.column_names,
        features=datasets.Features({IMAGE: datasets.Image(), LABEL: datasets.Value("string")}),
        desc="read image folder",
    )
    others = [
        p
        for class_dir in classes
        for p in sorted(class_dir.rglob("*"))
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() not in IMAGE_SUFFIXES
    ]
    if not others:
        return images
    extra = datasets.Dataset.from_dict(
        {
            IMAGE: [{"bytes": p.read_bytes(), "path": str(p)} for p in others],
            LABEL: [_class_of(p, folder) for p in others],
        },
        features=images.features,
    )
    return datasets.concatenate_datasets([images, extra])


def _class_of(path: Path, root: Path) -> str:
    return path.relative_to(root).parts[0]


def _embedded(batch: dict[str, list], names: list[str]) -> dict[str, list]:
    """The builder's cells point at files: read their bytes in, keep the path for the report."""
    cells = [
        {"bytes": cell.get("bytes") or Path(cell["path"]).read_bytes(), "path": cell.get("path")}
        for cell in batch["image"]
    ]
    return {IMAGE: cells, LABEL: [names[i] for i in batch["label"]]}


def conform_images(raw: Dataset, image_column: str, label_column: str, origin: str) -> Dataset:
    """The canonical (image, label) table: columns checked and renamed, labels as strings.
    Fails naming the column and config key when the image column is missing or not images, or
    the label has fewer than two classes."""
    import datasets

    from pipelines.modalities.image.rules import validate_image_columns

    check_source_columns(
        raw, image_column, "data.schema.image", label_column, origin, validate_image_columns
    )
    table = raw.select_columns([image_column, label_column])
    if image_column != IMAGE:
        table = table.rename_column(image_column, IMAGE)
    if label_column != LABEL:
        table = table.rename_column(label_column, LABEL)
    if table.features[LABEL] != datasets.Value("string"):
        names = getattr(table.features[LABEL], "names", None)
        table = table.map(
            lambda batch: {
                LABEL: [names[v] if names else str(v) for v in batch[LABEL]],
            },
            batched=True,
            features=datasets.Features({**table.features, LABEL: datasets.Value("string")}),
        )
    return table.cast_column(IMAGE, datasets.Image(decode=False))
