"""The image augmentation policy: a bad value fails naming its key; the offline top-up brings
every class to its declared share with new PNG images, byte-identical whatever the process
count; the on-the-fly batch transform keeps shapes, gives soft targets that sum to 1, and its
operations do what they say (a flip is a flip, CutMix's targets are its box's share)."""

from __future__ import annotations

import io
from collections import Counter

import numpy as np
import pytest
import torch
from datasets import Dataset, Features, Value
from datasets import Image as ImageFeature
from PIL import Image

from pipelines.core.augment import AUGMENTED, SOURCE_ID
from pipelines.errors import PipelineError
from pipelines.modalities.image.augment import (
    BatchAugment,
    ImageAugmentConfig,
    augment_train,
    cutmix,
)

# every operation off: the policy under test switches on only what it checks
OFF = dict(
    horizontal_flip=0.0,
    vertical_flip=0.0,
    rotation_degrees=0.0,
    crop_scale=[1.0, 1.0],
    brightness=0.0,
    contrast=0.0,
    saturation=0.0,
)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("min_class_share", 1.5),
        ("horizontal_flip", -0.1),
        ("rotation_degrees", 200),
        ("hue", 0.7),
        ("crop_scale", [0.9, 0.5]),
        ("crop_scale", [0.0, 1.0]),
        ("cutmix_alpha", 0),
        ("mixup_alpha", -1.0),
        ("erasing_probability", "often"),
        ("enabled", "yes"),
        ("class_min_share", {"crack": 2.0}),
    ],
)
def test_a_bad_policy_value_fails_naming_its_key(key: str, value: object) -> None:
    with pytest.raises(PipelineError, match=rf"data\.image\.augment\.{key}"):
        ImageAugmentConfig(**{key: value})


def test_cutmix_and_mixup_together_may_not_exceed_one_batch_in_one() -> None:
    with pytest.raises(PipelineError, match=r"cutmix_probability \+ .*mixup_probability"):
        ImageAugmentConfig(cutmix_probability=0.6, mixup_probability=0.5)


def _png(pixels: np.ndarray) -> dict[str, object]:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


@pytest.fixture(scope="module")
def train() -> Dataset:
    """30 random 24x24 images: 20 good, 6 scratch, 4 crack."""
    rng = np.random.default_rng(0)
    images = [_png(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)) for _ in range(30)]
    labels = ["good"] * 20 + ["scratch"] * 6 + ["crack"] * 4
    features = Features({"image": ImageFeature(), "label": Value("string")})
    return Dataset.from_dict({"image": images, "label": labels}, features=features)


def _bytes(ds: Dataset) -> list[bytes]:
    return [row["bytes"] for row in ds.cast_column("image", ImageFeature(decode=False))["image"]]


def test_the_top_up_brings_each_class_to_its_declared_share(train: Dataset) -> None:
    policy = ImageAugmentConfig(min_class_share=0.5, class_min_share={"crack": 0.8})
    out, report = augment_train(train, policy, seed=3)

    counts = Counter(out["label"][:])
    # the largest class has 20: scratch reaches 0.5 x 20, crack its own 0.8 x 20
    assert counts == {"good": 20, "scratch": 10, "crack": 16}
    assert report["added"] == {"crack": 12, "scratch": 4}
    assert (report["rows_before"], report["rows_after"]) == (30, 46)
    # the originals first and untouched, then new images of the same size made from the
    # class's own rows
    assert _bytes(out)[:30] == _bytes(train)
    assert out[AUGMENTED][:] == [False] * 30 + [True] * 16
    generated = out.select(range(30, 46))
    for row in generated:
        assert row["image"].size == (24, 24)
        assert train[row[SOURCE_ID]]["label"] == row["label"]
    assert not set(_bytes(generated)) & set(_bytes(train))


def test_the_top_up_is_the_same_whatever_the_process_count(train: Dataset) -> None:
    policy = ImageAugmentConfig(class_min_share={"crack": 0.8})
    one, _ = augment_train(train, policy, seed=3)
    again, _ = augment_train(train, policy, seed=3)
    two_processes, _ = augment_train(train, policy, seed=3, num_proc=2)
    other_seed, _ = augment_train(train, policy, seed=4)
    assert _bytes(one) == _bytes(again) == _bytes(two_processes)
    assert _bytes(one) != _bytes(other_seed)


def test_a_disabled_policy_or_a_balanced_split_adds_nothing(train: Dataset) -> None:
    out, report = augment_train(train, ImageAugmentConfig(enabled=False), seed=0)
    assert len(out) == 30 and report["added"] == {}
    out, report = augment_train(train, ImageAugmentConfig(min_class_share=0.1), seed=0)
    assert len(out) == 30 and report["added"] == {}


def test_a_share_for_an_unknown_class_names_the_key(train: Dataset) -> None:
    with pytest.raises(PipelineError, match=r"data\.image\.augment\.class_min_share.*dent"):
        augment_train(train, ImageAugmentConfig(class_min_share={"dent": 0.5}), seed=0)


MEAN, STD = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]


def _batch(rows: int = 8, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(rows, 3, size, size, generator=generator)
    return images, torch.arange(rows) % 3


def test_the_batch_transform_keeps_shapes_and_gives_targets_summing_to_one() -> None:
    policy = ImageAugmentConfig(
        erasing_probability=0.5, cutmix_probability=0.5, mixup_probability=0.5
    )
    augment = BatchAugment(policy, 3, MEAN, STD, (16, 16))
    images, labels = _batch()
    for seed in range(6):  # both mixers and the plain path
        torch.manual_seed(seed)
        out, targets = augment(images, labels)
        assert out.shape == images.shape and out.dtype == images.dtype
        assert targets.shape == (8, 3)
        assert torch.allclose(targets.sum(dim=1), torch.ones(8))
        assert (targets >= 0).all()
    # nothing of it goes into a checkpoint
    assert augment.state_dict() == {}


def test_without_mixing_the_targets_are_the_labels() -> None:
    augment = BatchAugment(ImageAugmentConfig(), 3, MEAN, STD, (16, 16))
    images, labels = _batch()
    torch.manual_seed(0)
    _, targets = augment(images, labels)
    assert torch.equal(targets.argmax(dim=1), labels) and torch.equal(
        targets.max(dim=1)[0], torch.ones(8)
    )


@pytest.mark.parametrize(("flip", "axis"), [("horizontal_flip", -1), ("vertical_flip", -2)])
def test_a_certain_flip_is_exactly_a_flip(flip: str, axis: int) -> None:
    augment = BatchAugment(ImageAugmentConfig(**(OFF | {flip: 1.0})), 3, MEAN, STD, (16, 16))
    images, labels = _batch()
    out, _ = augment(images, labels)
    assert torch.allclose(out, torch.flip(images, dims=[axis]), atol=1e-5)


def test_with_every_operation_off_the_images_pass_unchanged() -> None:
    augment = BatchAugment(ImageAugmentConfig(**OFF), 3, MEAN, STD, (16, 16))
    images, labels = _batch()
    out, _ = augment(images, labels)
    assert torch.equal(out, images)


def test_colour_jitter_works_on_pixel_values_not_on_normalised_ones() -> None:
    policy = ImageAugmentConfig(**(OFF | {"brightness": 0.5, "contrast": 0.5}))
    augment = BatchAugment(policy, 3, MEAN, STD, (16, 16))
    # mid-grey pixels normalised: jitter in [0, 1] keeps them in the valid pixel range
    images = (torch.full((4, 3, 16, 16), 0.5) - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(
        STD
    ).view(1, 3, 1, 1)
    torch.manual_seed(0)
    out, _ = augment(images, torch.zeros(4, dtype=torch.long))
    pixels = out * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)
    assert not torch.allclose(out, images)
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5


def test_cutmix_targets_are_the_pasted_box_share() -> None:
    images = torch.zeros(2, 1, 10, 10)
    images[1] = 1.0
    targets = torch.eye(2)
    torch.manual_seed(3)
    mixed, soft = cutmix(images, targets, alpha=1.0)
    for row in range(2):
        # the share of each image's pixels that came from image 1 is its target for class 1
        from_one = float(mixed[row].mean())
        assert soft[row, 1].item() == pytest.approx(from_one, abs=1e-6)
