"""`+experiment=visual_inspection` through the same eight stages as tables and text, on small
data: the stage code picks the image plug-ins from data.modality, every stage writes the
outputs dvc.yaml declares, every removed image reaches quarantine with its rule (and the counts
agree), evaluate reports the defect view beside the classical baseline, the export folder
scores raw image files alone, and bad input is quarantined with its reason or stops the stage
that meets it with one line naming the file, folder or key, leaving no output behind."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from pipelines.config import PipelineConfig
from pipelines.errors import PipelineError
from pipelines.layout import Layout
from pipelines.modalities.image.drift_features import FEATURES as IMAGE_DRIFT
from tests import modality_runs as runs
from tests.small import REPO, env


def image_config(tmp: Path, *extra: str) -> PipelineConfig:
    return runs.small_config("visual_inspection", runs.SMALL_IMAGES, tmp, *extra)


pipeline = runs.pipeline_fixture(image_config, "images")


def test_the_visual_inspection_experiment_selects_the_image_modality(tmp_path: Path) -> None:
    cfg = image_config(tmp_path)
    assert cfg.data.modality == "image" and cfg.data.name == "visual_inspection"
    assert cfg.model.name == "image_cnn_moe" and cfg.optimized_metric == "val/macro_f1"
    assert cfg.data.image.good_class == "clean"
    # BatchNorm-folded convs: one INT8 scale per output channel
    assert cfg.quantize.static.per_channel is True


def test_every_stage_writes_what_dvc_yaml_declares(pipeline: tuple[Path, dict]) -> None:
    root, _ = pipeline
    layout = Layout(root)
    runs.assert_every_declared_output_exists(
        root,
        layout.profile_report / "profile.html",
        layout.profile_report / "profile.png",
        layout.profile_report / "samples.png",
        layout.evaluate_report / "confusion_onnx_int8_static.png",
        layout.evaluate_report / "misclassified.png",
        layout.evaluate_report / "comparison.png",
        layout.roc_curves / "onnx_int8_static.csv",
        layout.pr_curves / "hog_logistic_regression.csv",
    )
    assert json.loads(layout.schema_file.read_text())["classes"] == [
        "clean",
        "crack",
        "scratch",
        "spot",
    ]


def test_every_removed_image_is_in_quarantine_with_its_rule(pipeline: tuple[Path, dict]) -> None:
    root, results = pipeline
    clean = results["clean"]
    runs.assert_quarantine_agrees_with_the_metrics(root, clean)
    # the simulator's dirt reaches the rules: unreadable files, duplicates, bad exposure
    for rule in ("unreadable", "exposure", "exact_duplicate"):
        assert clean["removed_by_rule"][rule] > 0, rule
    # grey and RGBA images are converted, other sizes resized, not removed
    assert clean["converted"] > 0 and clean["resized"] > 0
    # every kept image is RGB at the declared size
    from pipelines.io import read_split

    kept = read_split(Layout(root).split(Layout(root).cleaned, "test"))
    assert {(im.mode, im.size) for im in kept["image"][:]} == {("RGB", (32, 32))}


def test_augment_tops_up_the_rare_defect_with_new_images(pipeline: tuple[Path, dict]) -> None:
    _, results = pipeline
    augment = results["augment"]
    assert augment["rows_after"] == augment["rows_before"] + sum(augment["added"].values())
    assert augment["added"]["crack"] > 0 and "clean" not in augment["added"]


def test_evaluate_reports_the_defect_view_beside_the_int8_copies_and_the_baseline(
    pipeline: tuple[Path, dict],
) -> None:
    root, results = pipeline
    baselines = {"hog_logistic_regression", "hog_gradient_boosting"}
    timed = {"onnx_int8_static", "texture_features_only"}
    variants = runs.assert_multiclass_evaluation(root, results, baselines, timed)
    for m in variants.values():
        assert set(m["defect_class_recall"]) == {"crack", "scratch", "spot"}
        assert 0.0 <= m["defect_recall"] <= 1.0
        at = m["precision_at_defect_recall"]
        assert at["recall"] >= at["recall_target"] == 0.95
    # the texture features tell the simulator's defects apart: real baselines
    assert variants["hog_logistic_regression"]["macro_f1"] > 0.5
    assert variants["hog_gradient_boosting"]["macro_f1"] > 0.5
    assert results["quantize"]["parity_batches"] == [1, 3, 32]


def test_the_same_config_and_seed_give_the_same_data_and_metrics(
    pipeline: tuple[Path, dict], tmp_path: Path
) -> None:
    root, results = pipeline
    runs.assert_same_seed_same_bytes(image_config(tmp_path), root, results, tmp_path)


# --- an image folder, and bad input ---------------------------------------------------------


def _png(seed: int, mode: str = "RGB", size: tuple[int, int] = (40, 40)) -> bytes:
    """A PNG of seeded noise in `mode` (RGB, L or RGBA) at `size` (width, height)."""
    import numpy as np

    channels = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(size[1], size[0], channels), dtype=np.uint8)
    image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels)
    assert image.mode == mode
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def image_folder(root: Path, per_class: int = 80) -> Path:
    """Two classes of noise images in class sub-folders: 40x40 RGB, with grey 40x40 and RGBA
    64x48 ones among them."""
    folder = root / "images"
    shapes = [("RGB", (40, 40)), ("L", (40, 40)), ("RGBA", (64, 48))]
    for offset, label in enumerate(("good", "dent")):
        (folder / label).mkdir(parents=True)
        for i in range(per_class):
            mode, size = shapes[i % 3]
            (folder / label / f"{i:03d}.png").write_bytes(_png(1000 * offset + i, mode, size))
    return folder


def folder_config(tmp: Path, folder: Path, *extra: str) -> PipelineConfig:
    return image_config(
        tmp,
        "data.source.kind=imagefolder",
        f"data.source.path={folder}",
        "data.image.good_class=good",
        "data.image.clean.blur.enabled=false",
        "data.image.clean.exposure.enabled=false",
        # 160 images: 24 in val and test, two of them bad files
        "data.image.profile.gates.min_rows=10",
        "data.image.profile.gates.max_unreadable_rate=0.2",
        *extra,
    )


def test_an_image_folder_with_bad_files_is_read_and_the_bad_files_quarantined(
    tmp_path: Path,
) -> None:
    """Truncated PNG bytes, a text file and mixed modes and sizes among the images: ingest
    keeps every file as a row (nothing vanishes), clean quarantines the unreadable ones with
    their rule and converts and resizes the rest."""
    folder = image_folder(tmp_path)
    whole = (folder / "good" / "000.png").read_bytes()
    (folder / "good" / "truncated.png").write_bytes(whole[: len(whole) // 2])
    (folder / "dent" / "notes.txt").write_text("not an image", encoding="utf-8")
    cfg = folder_config(tmp_path, folder)
    rows = runs.run("ingest", cfg, tmp_path)
    assert sum(rows.values()) == 2 * 80 + 2
    runs.run("profile", cfg, tmp_path)
    clean = runs.run("clean", cfg, tmp_path)
    quarantine = pd.read_parquet(Layout(tmp_path).quarantine)
    unreadable = quarantine[quarantine["rule"] == "unreadable"]
    paths = sorted(Path(cell["path"]).name for cell in unreadable["image"])
    assert paths == ["notes.txt", "truncated.png"]
    assert clean["converted"] > 0 and clean["resized"] > 0


def test_a_folder_with_one_class_or_an_empty_class_is_named(tmp_path: Path) -> None:
    out = Layout(tmp_path).ingested
    folder = tmp_path / "one"
    (folder / "good").mkdir(parents=True)
    (folder / "good" / "a.png").write_bytes(_png(1))
    cfg = folder_config(tmp_path, folder)
    runs.fails(
        "ingest", cfg, tmp_path, r"one: 1 class folder\(s\) \(good\); expected at least 2", out
    )

    (folder / "dent").mkdir()
    runs.fails("ingest", cfg, tmp_path, r"one/dent: empty class folder; expected at least one", out)

    cfg = folder_config(tmp_path, tmp_path / "missing")
    runs.fails(
        "ingest", cfg, tmp_path, r"'data\.source\.path' = '.*missing': expected a folder", out
    )


def test_rules_that_remove_every_image_name_the_rule_that_removed_most(tmp_path: Path) -> None:
    cfg = image_config(tmp_path, "data.image.clean.size.min_side=100")
    runs.run("ingest", cfg, tmp_path)
    layout = Layout(tmp_path)
    runs.fails("clean", cfg, tmp_path, r"split 'train'.*size", layout.cleaned)
    assert not layout.quarantine.exists() and not layout.clean_metrics.exists()


def test_image_settings_are_checked_before_any_image_is_read(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"'model\.name' = 'moe_mlp' with data\.modality"):
        image_config(tmp_path, "model.name=moe_mlp")
    with pytest.raises(
        PipelineError, match=r"size\.height' = 32, 'data\.image\.clean\.size\.width' = 48: expected"
    ):
        image_config(tmp_path, "data.image.clean.size.width=48")
    with pytest.raises(PipelineError, match=r"'model\.seq_len' = 10: image_patch_moe expects"):
        image_config(tmp_path, "model.name=image_patch_moe", "model.seq_len=10")
    with pytest.raises(PipelineError, match=r"data\.image\.clean\.dedup\.max_distance = 64"):
        image_config(tmp_path, "data.image.clean.dedup.max_distance=64")
    with pytest.raises(PipelineError, match=r"data\.image\.augment\.crop_scale"):
        image_config(tmp_path, "data.image.augment.crop_scale=[0.9,0.5]")


def test_train_py_runs_the_image_experiment_with_the_patch_transformer(tmp_path: Path) -> None:
    """The user's command with Hydra overrides, the patch Transformer's dense twin; stopped
    after train (the later stages are covered above) to keep the suite short."""
    metrics = runs.train_only(
        "visual_inspection",
        ["model=image_patch_dense", *runs.SMALL_IMAGES, *runs.SHARED_SMALL],
        tmp_path / "run",
    )
    assert metrics["image_size"] == 32


def test_the_run_summary_shows_the_defect_view(
    pipeline: tuple[Path, dict], capsys: pytest.CaptureFixture[str]
) -> None:
    from pipelines.summary import print_summary

    root, _ = pipeline
    print_summary(Layout(root))
    out = capsys.readouterr().out
    assert "images, 4 classes" in out and "defect recall" in out
    assert "onnx_int8_static" in out and "hog_gradient_boosting" in out


def test_the_export_card_states_the_preprocessing_a_deployer_needs(
    pipeline: tuple[Path, dict],
) -> None:
    from pipelines.modalities.image.export_folder import score_image_files

    root, results = pipeline
    folder = Layout(root).export_dir
    assert sorted(p.name for p in folder.iterdir()) == [
        "examples",
        "labels.json",
        "model.onnx",
        "model_card.json",
        "reference_profile.json",
    ]
    # what the server's image drift gauges compare traffic with: the raw train files
    reference = json.loads((folder / "reference_profile.json").read_text())
    assert list(reference["features"]) == IMAGE_DRIFT and reference["source"] == "ingested/train"
    assert reference["rows"] > 0
    # examples/: three test images of three classes (<n>-<label>.png), which the folder scores
    examples = sorted((folder / "examples").iterdir())
    named = [path.stem.split("-", 1)[1] for path in examples]
    classes = json.loads((folder / "labels.json").read_text())["labels"]
    assert len(examples) == 3 and len(set(named)) == 3 and set(named) <= set(classes)
    assert [r["label"] in classes for r in score_image_files(folder, examples)] == [True] * 3
    card = json.loads((folder / "model_card.json").read_text())
    assert card["variant"] == "int8_static"
    pre = card["preprocessing"]
    assert (pre["height"], pre["width"], pre["fit"]) == (32, 32, "crop")
    assert (pre["channel_order"], pre["layout"]) == ("RGB", "NCHW")
    assert pre["mean"] == pytest.approx(results["train"]["channel_mean"])
    assert pre["std"] == pytest.approx(results["train"]["channel_std"])
    # export scored 64 test images from PNG files through the folder alone: the same scores
    # as the pipeline's for that graph; INT8's distance from the trained model is recorded
    assert card["folder_vs_variant_max_abs_diff"] <= 1e-4
    assert 0 < card["variant_vs_pytorch_max_abs_diff"] < 1
    assert set(card["test_metrics"]["baselines_macro_f1"]) == {
        "hog_logistic_regression",
        "hog_gradient_boosting",
    }
    # a raw file of another size and mode: the card's fit and conversion make it scoreable
    raw = root / "raw.png"
    Image.new("L", (80, 50), color=128).save(raw)
    (scored,) = score_image_files(folder, [raw])
    labels = json.loads((folder / "labels.json").read_text())["labels"]
    assert scored["label"] in labels
    assert sum(scored["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("bf16", ["trainer.precision=bf16-mixed"]),
        ("ddp", ["strategy.name=ddp", "trainer.devices=2"]),
    ],
)
def test_the_image_model_trains_in_bf16_and_under_ddp_on_cpu(
    pipeline: tuple[Path, dict], tmp_path: Path, name: str, options: list[str]
) -> None:
    """The strategy and precision options reach images as they reach tables: bf16 autocast
    (the on-the-fly augmentation included) and two DDP processes that agree on validation."""
    import shutil

    root, _ = pipeline
    shutil.copytree(root / "data", tmp_path / "data")
    shutil.copy(root / "params.yaml", tmp_path / "params.yaml")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "stages.train",
            "--params",
            str(tmp_path / "params.yaml"),
            "--root",
            str(tmp_path),
            *runs.SMALL_IMAGES,
            *runs.SHARED_SMALL,
            *options,
        ],  # fmt: skip
        cwd=REPO,
        env=env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics" / "train.json").read_text())
    assert 0.0 <= metrics["val"]["macro_f1"] <= 1.0
    ranks = sorted((tmp_path / "outputs" / "train").glob("*/ranks/rank*.json"))
    assert len(ranks) == (2 if name == "ddp" else 1)
    per_rank = [json.loads(p.read_text()) for p in ranks]
    assert all(r["macro_f1"] == pytest.approx(per_rank[0]["macro_f1"]) for r in per_rank)


def test_the_image_search_space_runs_as_an_optuna_sweep(tmp_path: Path) -> None:
    """`python train.py -m hparams_search=visual_inspection_optuna`, two trials on small data:
    the searched keys reach the trials and the study records both values."""
    searched = ("model.hidden_dim", "model.ffn_dim")
    overrides = [o for o in runs.SMALL_IMAGES if not o.startswith(searched)] + runs.SHARED_SMALL
    done = runs.two_trial_sweep("visual_inspection_optuna", overrides, tmp_path, data_entries=1)
    assert {"train.lr", "model.num_experts", "model.hidden_dim"} <= set(done[0].params)


def test_the_real_digits_ingest_through_the_same_stage(tmp_path: Path) -> None:
    """data=digits: the 1,797 handwritten digits scikit-learn ships, split by class, the label
    map in schema.json, and every image readable."""
    rows, schema, cfg = runs.ingest_real_data("visual_inspection", "digits", tmp_path)
    assert sum(rows.values()) == 1_797 and rows["test"] == round(1_797 * 0.15)
    assert schema["classes"] == [str(d) for d in range(10)]
    assert schema["origin"].startswith("scikit-learn load_digits")
    assert cfg.data.image.good_class is None
