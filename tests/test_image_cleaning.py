"""Specification of the image cleaning rules (pipelines/modalities/image/rules.py).

Each rule removes exactly the dirt planted for it and leaves clean images alone; removed rows
land in the quarantine with their original bytes and the rule; mode and size are normalised as
declared; duplicates are judged across splits (train is the reference); the result does not
depend on num_proc; bad inputs and bad config fail with the split, column or key named.
"""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image, ImageFilter

from pipelines.errors import PipelineError
from pipelines.modalities.image.config import (
    NO_IMAGE_DIRT,
    BlurConfig,
    ExposureConfig,
    ImageCleanConfig,
    ImageDedupConfig,
    ImageDirt,
    ImageSimulatorConfig,
    ModeConfig,
    SizeConfig,
)
from pipelines.modalities.image.rules import REMOVAL_RULES, RULE_ORDER, clean_image_splits
from pipelines.modalities.image.simulator import render_surface, simulate_images, write_image_folder

ALL_RULES = ImageCleanConfig(blur=BlurConfig(enabled=True), exposure=ExposureConfig(enabled=True))
DIRTY = ImageSimulatorConfig(dirt=ImageDirt(**dict.fromkeys(NO_IMAGE_DIRT.rates(), 0.04)))
# The rule each kind of planted dirt must meet; the other kinds are kept (normalised).
EXPECTED = {
    "corrupt": {"unreadable"},
    "not_image": {"unreadable"},
    "exact_duplicate": {"exact_duplicate", "exact_leak"},
    "near_duplicate": {"near_duplicate", "near_leak"},
    "blurry": {"blur"},
    "overexposed": {"exposure"},
    "underexposed": {"exposure"},
}
N_TRAIN, N_TEST = 450, 150


@pytest.fixture(scope="module")
def dirty() -> dict[str, datasets.Dataset]:
    ds = simulate_images(N_TRAIN + N_TEST, seed=11, cfg=DIRTY, with_dirt_column=True)
    return {"train": ds.select(range(N_TRAIN)), "test": ds.select(range(N_TRAIN, len(ds)))}


@pytest.fixture(scope="module")
def cleaned(dirty):
    return clean_image_splits(dirty, ALL_RULES)


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _surface(i: int, size: tuple[int, int] = (64, 64)) -> Image.Image:
    return render_surface(np.random.default_rng((99, i)), "clean", size)


def _ds(images: list, labels: list[str] | None = None, start: int = 0) -> datasets.Dataset:
    """A split of PIL images or raw bytes, labels alternating a/b unless given."""
    cells = [{"bytes": i if isinstance(i, bytes) else _png(i), "path": None} for i in images]
    labels = labels or [("a", "b")[i % 2] for i in range(len(images))]
    features = datasets.Features(
        {
            "image_id": datasets.Value("int64"),
            "image": datasets.Image(),
            "label": datasets.Value("string"),
        }  # fmt: skip
    )
    ids = list(range(start, start + len(images)))
    return datasets.Dataset.from_dict(
        {"image_id": ids, "image": cells, "label": labels}, features=features
    )


def _rule_of(quarantine: datasets.Dataset) -> dict[int, str]:
    return dict(zip(quarantine["image_id"][:], quarantine["rule"][:], strict=True))


# --- order and outputs ---------------------------------------------------------------------


def test_rules_run_in_the_documented_order() -> None:
    assert RULE_ORDER == (
        "unreadable", "mode", "size", "exposure", "blur", "exact_duplicate", "near_duplicate"
    )  # fmt: skip
    assert list(REMOVAL_RULES) == [
        "unreadable", "mode", "size", "exposure", "blur",
        "exact_duplicate", "exact_leak", "near_duplicate", "near_leak",
    ]  # fmt: skip


def test_every_rule_removes_exactly_its_planted_dirt(dirty, cleaned) -> None:
    kept, quarantine, _ = cleaned
    for dirt, rule in zip(quarantine["dirt"][:], quarantine["rule"][:], strict=True):
        assert rule in EXPECTED.get(dirt, set()), (dirt, rule)  # precision 1
    planted = Counter(d for ds in dirty.values() for d in ds["dirt"][:] if d in EXPECTED)
    assert Counter(quarantine["dirt"][:]) == planted  # recall 1
    for split in kept.values():
        assert set(split["dirt"][:]) <= {"", "grayscale", "rgba", "wrong_size"}


def test_report_counts_match_the_quarantine_and_the_normalised_rows(dirty, cleaned) -> None:
    kept, quarantine, report = cleaned
    for name, split in report.items():
        rules = zip(quarantine["rule"][:], quarantine["split"][:], strict=True)
        in_quarantine = Counter(r for r, s in rules if s == name)
        assert in_quarantine == Counter({r: n for r, n in split["removed"].items() if n})
        assert split["rows_in"] == len(dirty[name])
        assert (
            split["rows_out"] == len(kept[name]) == split["rows_in"] - sum(in_quarantine.values())
        )
        dirt = Counter(dirty[name]["dirt"][:])
        assert split["converted"] == dirt["grayscale"] + dirt["rgba"]
        assert split["resized"] == dirt["wrong_size"]


def test_leaks_are_found_only_in_the_later_split(cleaned) -> None:
    _, quarantine, report = cleaned
    assert report["train"]["removed"]["exact_leak"] == report["train"]["removed"]["near_leak"] == 0
    assert (
        report["test"]["removed"]["exact_leak"] > 0 and report["test"]["removed"]["near_leak"] > 0
    )


def test_kept_images_leave_in_the_target_mode_and_size(cleaned) -> None:
    kept, _, _ = cleaned
    for split in kept.values():
        assert isinstance(split.features["image"], datasets.Image)
        assert {(image.mode, image.size) for image in split["image"][:]} == {("RGB", (64, 64))}
        assert split.column_names == ["image_id", "image", "label", "dirt"]


def test_quarantine_keeps_the_original_bytes_the_rule_the_reason_and_the_split(
    dirty, cleaned
) -> None:
    _, quarantine, _ = cleaned
    assert quarantine.column_names == [
        "image_id", "image", "label", "dirt", "rule", "reason", "split"
    ]  # fmt: skip
    # every removal says why, with the figure behind it
    by_rule: dict[str, set[str]] = {}
    for rule, reason in zip(quarantine["rule"][:], quarantine["reason"][:], strict=True):
        by_rule.setdefault(rule, set()).add(reason)
    assert all(reasons and "" not in reasons for reasons in by_rule.values())
    assert any("Error" in r or "truncated" in r for r in by_rule["unreadable"])
    assert all(r.startswith("mean brightness") for r in by_rule.get("exposure", ()))
    assert by_rule.get("exact_leak", {"x"}) <= {"x", "the same pixels as a train image"}
    assert quarantine.features["image"] == datasets.Image(decode=False)  # some cannot decode
    original = {}
    for ds in dirty.values():
        raw = ds.cast_column("image", datasets.Image(decode=False))
        original.update(zip(raw["image_id"][:], (c["bytes"] for c in raw["image"][:]), strict=True))
    for image_id, cell in zip(quarantine["image_id"][:], quarantine["image"][:], strict=True):
        assert cell["bytes"] == original[image_id]
    assert set(quarantine["split"][:]) == {"train", "test"}


def test_clean_images_pass_every_rule_untouched() -> None:
    images = [_surface(i) for i in range(6)]
    kept, quarantine, report = clean_image_splits({"train": _ds(images)}, ALL_RULES)
    assert len(quarantine) == 0
    assert report["train"]["rows_out"] == 6 and report["train"]["converted"] == 0
    assert [i.tobytes() for i in kept["train"]["image"][:]] == [i.tobytes() for i in images]


def test_blur_and_exposure_are_off_by_default() -> None:
    sharp = [_surface(i) for i in range(4)]
    blurry = _surface(10).filter(ImageFilter.GaussianBlur(3))
    dark = Image.fromarray((np.asarray(_surface(11)) * 0.05).astype(np.uint8))
    _, quarantine, _ = clean_image_splits(
        {"train": _ds([*sharp, blurry, dark])}, ImageCleanConfig()
    )
    assert len(quarantine) == 0
    _, quarantine, _ = clean_image_splits({"train": _ds([*sharp, blurry, dark])}, ALL_RULES)
    assert _rule_of(quarantine) == {4: "blur", 5: "exposure"}  # dark: exposure comes first


# --- mode and size -------------------------------------------------------------------------


def test_mode_policy_convert_or_quarantine() -> None:
    images = [_surface(0), _surface(1).convert("L"), _surface(2).convert("RGBA"), _surface(3)]
    kept, quarantine, report = clean_image_splits({"train": _ds(images)}, ImageCleanConfig())
    assert len(quarantine) == 0 and report["train"]["converted"] == 2
    assert {image.mode for image in kept["train"]["image"][:]} == {"RGB"}
    strict = ImageCleanConfig(mode=ModeConfig(policy="quarantine"))
    kept, quarantine, report = clean_image_splits({"train": _ds(images)}, strict)
    assert _rule_of(quarantine) == {1: "mode", 2: "mode"}
    assert report["train"]["converted"] == 0
    grey = ImageCleanConfig(mode=ModeConfig(target="L"))
    kept, _, report = clean_image_splits({"train": _ds(images)}, grey)
    assert {image.mode for image in kept["train"]["image"][:]} == {"L"}
    assert report["train"]["converted"] == 3


@pytest.mark.parametrize("fit", ["crop", "pad"])
def test_resize_gives_the_declared_size(fit) -> None:
    images = [_surface(0, (64, 64)), _surface(1, (96, 128)), _surface(2, (40, 30)), _surface(3)]
    cfg = ImageCleanConfig(size=SizeConfig(height=32, width=48, fit=fit))
    kept, _, report = clean_image_splits({"train": _ds(images)}, cfg)
    assert {image.size for image in kept["train"]["image"][:]} == {(48, 32)}
    assert report["train"]["resized"] == 4


def test_pad_keeps_the_whole_image_and_fills_with_pad_value() -> None:
    wide = Image.new("RGB", (128, 64), (200, 200, 200))  # 2:1 into 64x64: 16-px bands
    cfg = ImageCleanConfig(size=SizeConfig(fit="pad", pad_value=7))
    kept, _, _ = clean_image_splits({"train": _ds([wide, _surface(1)])}, cfg)
    pixels = np.asarray(kept["train"]["image"][0])
    assert (pixels[:16] == 7).all() and (pixels[-16:] == 7).all()
    assert (pixels[17:47] == 200).all()
    kept, _, _ = clean_image_splits({"train": _ds([wide, _surface(1)])}, ImageCleanConfig())
    assert (np.asarray(kept["train"]["image"][0]) == 200).all()  # crop: the centre only


def test_images_too_small_to_upscale_are_removed() -> None:
    images = [_surface(0), _surface(1, (8, 8)), _surface(2, (15, 64)), _surface(3, (16, 16))]
    _, quarantine, _ = clean_image_splits({"train": _ds(images)}, ImageCleanConfig())
    assert _rule_of(quarantine) == {1: "size", 2: "size"}


# --- unreadable and duplicates -----------------------------------------------------------------


def test_unreadable_bytes_are_removed_whatever_they_are() -> None:
    good = _png(_surface(0))
    bad = [good[: len(good) // 2], b"not an image", b"", good[:8]]
    _, quarantine, report = clean_image_splits(
        {"train": _ds([_surface(1), *bad, _surface(2)])}, ImageCleanConfig()
    )
    assert _rule_of(quarantine) == dict.fromkeys(range(1, 5), "unreadable")
    assert report["train"]["removed"]["unreadable"] == 4


def test_duplicates_within_and_leaks_across_splits() -> None:
    a, b, c = _surface(0), _surface(1), _surface(2)
    relit = Image.fromarray(np.clip(np.asarray(b, np.int16) + 6, 0, 255).astype(np.uint8))
    reencoded = io.BytesIO()
    a.save(reencoded, format="PNG", compress_level=9)  # other bytes, same pixels
    train = _ds([a, b, c, reencoded.getvalue()])
    val = _ds([a, relit, _surface(3), _surface(3), _surface(4)], start=100)
    _, quarantine, report = clean_image_splits({"val": val, "train": train}, ImageCleanConfig())
    assert _rule_of(quarantine) == {
        3: "exact_duplicate",
        100: "exact_leak",
        101: "near_leak",
        103: "exact_duplicate",
    }
    assert list(report) == ["train", "val"]  # train is the reference, whatever the order given
    no_near = ImageCleanConfig(dedup=ImageDedupConfig(perceptual=False))
    _, quarantine, _ = clean_image_splits({"train": train, "val": val}, no_near)
    assert 101 not in _rule_of(quarantine)


def test_same_output_whatever_num_proc() -> None:
    ds = simulate_images(160, seed=5, cfg=DIRTY, with_dirt_column=True)
    splits = {"train": ds.select(range(120)), "test": ds.select(range(120, 160))}
    one = clean_image_splits(splits, ALL_RULES)
    two = clean_image_splits(splits, ALL_RULES, num_proc=2)
    undecoded = datasets.Image(decode=False)
    for name in splits:
        a, b = (r[0][name].cast_column("image", undecoded).to_dict() for r in (one, two))
        assert a == b
    assert one[1].to_dict() == two[1].to_dict()
    assert one[2] == two[2]


def test_an_image_folder_loads_and_cleans_with_bytes_embedded_in_the_quarantine(
    tmp_path: Path,
) -> None:
    ds = simulate_images(60, seed=8, cfg=DIRTY, with_dirt_column=True)
    folder = write_image_folder(ds, tmp_path / "images")
    loaded = datasets.load_dataset(
        "imagefolder", data_dir=str(folder), split="train", cache_dir=str(tmp_path / "cache")
    )
    _, quarantine, report = clean_image_splits({"train": loaded}, ALL_RULES)
    planted = Counter(d for d in ds["dirt"][:] if d in ("corrupt", "not_image"))
    assert report["train"]["removed"]["unreadable"] == sum(planted.values()) > 0
    rows = zip(quarantine["image"][:], quarantine["rule"][:], strict=True)
    unreadable = [cell for cell, rule in rows if rule == "unreadable"]
    on_disk = {p.read_bytes() for p in folder.rglob("*.png")}
    assert all(cell["bytes"] in on_disk for cell in unreadable)


# --- bad input and config --------------------------------------------------------------------


def test_missing_columns_and_empty_splits_name_the_split_and_column() -> None:
    train = _ds([_surface(0), _surface(1)])
    with pytest.raises(PipelineError, match=r"split 'train': image column 'picture' is missing"):
        clean_image_splits({"train": train}, ImageCleanConfig(image_column="picture"))
    with pytest.raises(PipelineError, match=r"split 'train': label column 'label' is missing"):
        clean_image_splits({"train": train.remove_columns("label")}, ImageCleanConfig())
    with pytest.raises(PipelineError, match=r"split 'test': image column 'image' has no rows"):
        clean_image_splits({"train": train, "test": train.select([])}, ImageCleanConfig())
    text = datasets.Dataset.from_dict({"image": ["a.png", "b.png"], "label": ["a", "b"]})
    with pytest.raises(PipelineError, match=r"image column 'image' holds string values"):
        clean_image_splits({"train": text}, ImageCleanConfig())


def test_one_class_in_train_names_the_label_column() -> None:
    train = _ds([_surface(0), _surface(1)], labels=["a", "a"])
    with pytest.raises(
        PipelineError,
        match=r"split 'train': label column 'label' has 1 class\(es\) \('a'\); expected at least 2",
    ):
        clean_image_splits({"train": train}, ImageCleanConfig())
    test = _ds([_surface(2)], labels=["a"])  # one class is fine outside train
    clean_image_splits({"train": _ds([_surface(0), _surface(1)]), "test": test}, ImageCleanConfig())


def test_a_split_emptied_by_the_rules_names_the_rule_that_removed_most() -> None:
    train = _ds([_surface(0), _surface(1)])
    test = _ds([b"junk", b"", _png(_surface(0))], start=10)
    with pytest.raises(
        PipelineError,
        match=r"every row of split 'test' was removed \(unreadable removed 2 of 3\); "
        r"loosen data\.image\.clean\.readable",
    ):
        clean_image_splits({"train": train, "test": test}, ImageCleanConfig())


def test_reserved_columns_are_refused() -> None:
    train = _ds([_surface(0), _surface(1)]).add_column("rule", ["x", "y"])
    with pytest.raises(PipelineError, match=r"split 'train': column 'rule' is reserved"):
        clean_image_splits({"train": train}, ImageCleanConfig())


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"mode": {"policy": "drop"}}, r"mode\.policy = 'drop': expected one of convert"),
        ({"mode": {"target": "CMYK"}}, r"mode\.target = 'CMYK': expected one of RGB"),
        ({"size": {"height": 0}}, r"size\.height = 0: expected an integer >= 1"),
        ({"size": {"fit": "stretch"}}, r"size\.fit = 'stretch': expected one of crop, pad"),
        ({"dedup": {"max_distance": 64}}, r"dedup\.max_distance = 64: expected an integer < 64"),
        ({"dedup": {"method": "whash"}}, r"dedup\.method = 'whash': expected one of phash"),
        ({"blur": {"min_laplacian_var": -1}}, r"blur\.min_laplacian_var = -1: expected a n"),
        ({"exposure": {"min_brightness": 200, "max_brightness": 100}}, r"exposure\.min_bright"),
        ({"readable": {"strict": True}}, r"readable\.strict: unknown key"),
    ],
)  # fmt: skip
def test_bad_config_names_its_key(section, message) -> None:
    with pytest.raises(PipelineError, match=r"data\.image\.clean\." + message):
        ImageCleanConfig(**section)
