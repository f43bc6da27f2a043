"""Settings of the image modality's data stages: the simulator, the cleaning rules and the
profile gates. One dataclass per section, each validated on construction, so a bad value
fails before any image is read, with the key, the value and what was expected (e.g.
"data.image.clean.size.height = 0: expected an integer >= 1").

Free of heavy imports (no Pillow, numpy or datasets) so pipelines.config can declare these in
the structured config cheaply. The check helpers are pipelines/core/config_checks.py's, so
every modality words its errors alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import ClassVar

from pipelines.core.config_checks import (
    DRIFT,
    CleanSettings,
    DirtShares,
    ProfileGates,
    build_sections,
    check_bool,
    check_fraction,
    check_int,
    check_interval,
    check_number,
    fail,
    gate,
)
from pipelines.errors import PipelineError

CLEAN_KEY = "data.image.clean"
GATES_KEY = "data.image.profile.gates"
SIMULATOR_KEY = "data.image.simulator"
AUGMENT_KEY = "data.image.augment"

MODES = ("RGB", "L", "RGBA")  # target modes the rules can convert to
MODE_POLICIES = ("convert", "quarantine")
FITS = ("crop", "pad")
# named backgrounds; any other colour is written "#rrggbb"
BACKGROUND_NAMES = {"white": "#ffffff", "black": "#000000", "grey": "#808080", "gray": "#808080"}
HASH_METHODS = ("phash", "dhash", "ahash")
DEFECT_CLASSES = ("clean", "scratch", "spot", "crack")


# --- the simulator ---------------------------------------------------------------------------


@dataclass
class ImageDirt(DirtShares, key=f"{SIMULATOR_KEY}.dirt", unit="image"):
    """Share of images that get each kind of dirt (exclusive kinds: the sum must be <= 1).
    Each kind is made to trip exactly one cleaning rule, so the rules can be scored on it."""

    corrupt: float = 0.01
    """Share of PNG files cut short or with flipped bytes (rule: readable)."""
    not_image: float = 0.005
    """Share of text/HTML files where an image should be (rule: readable)."""
    grayscale: float = 0.01
    """Share of mode L images (rule: mode; converted, or quarantined by policy)."""
    rgba: float = 0.01
    """Share of mode RGBA images (rule: mode)."""
    wrong_size: float = 0.01
    """Share rendered at another, larger size (rule: size; resized)."""
    exact_duplicate: float = 0.02
    """Share that repeat an earlier image's pixels (rule: dedup.exact)."""
    near_duplicate: float = 0.02
    """Share that are an earlier image re-lit with fresh noise (rule: dedup.perceptual)."""
    blurry: float = 0.01
    """Share with a Gaussian blur (rule: blur)."""
    overexposed: float = 0.005
    """Share washed out to near white (rule: exposure)."""
    underexposed: float = 0.005
    """Share near black (rule: exposure)."""


NO_IMAGE_DIRT = ImageDirt(**dict.fromkeys((f.name for f in fields(ImageDirt)), 0.0))


def _default_shares() -> dict[str, float]:
    # crack is the rare class a defect detector exists for: ~5% of images
    return {"clean": 0.55, "scratch": 0.25, "spot": 0.15, "crack": 0.05}


@dataclass
class ImageSimulatorConfig:
    """Textured surfaces with defects; classes are a subset of DEFECT_CLASSES."""

    height: int = 64
    """Height of the simulated images, in pixels."""
    width: int = 64
    """Width of the simulated images, in pixels."""
    class_shares: dict[str, float] = field(default_factory=_default_shares)
    """Share of each class (clean, scratch, spot, crack) among the simulated images."""
    dirt: ImageDirt = field(default_factory=ImageDirt)

    def __post_init__(self) -> None:
        check_int(f"{SIMULATOR_KEY}.height", self.height, 16)
        check_int(f"{SIMULATOR_KEY}.width", self.width, 16)
        key = f"{SIMULATOR_KEY}.class_shares"
        if not isinstance(self.class_shares, dict) or len(self.class_shares) < 2:
            fail(key, self.class_shares, f"a mapping of at least 2 of {', '.join(DEFECT_CLASSES)}")
        for name, share in self.class_shares.items():
            if name not in DEFECT_CLASSES:
                fail(f"{key}.{name}", share, f"a class among {', '.join(DEFECT_CLASSES)}")
            check_number(f"{key}.{name}", share, 0.0)
        if sum(self.class_shares.values()) <= 0:
            fail(key, self.class_shares, "shares with a positive sum")
        build_sections(self, SIMULATOR_KEY)


# --- the cleaning rules -----------------------------------------------------------------------


@dataclass
class ReadableConfig:
    """Always on: an image that cannot be decoded cannot be normalised or learned from.
    `verify` runs Pillow's structural check (PNG chunk CRCs) before decoding, which catches
    flipped bytes that a plain decode can read past; `max_pixels` refuses decompression bombs
    from the header, before any pixel is decoded."""

    verify: bool = True
    """Run Pillow's structural check before decoding."""
    max_pixels: int = 50_000_000
    """Larger images are refused as decompression bombs (rule `unreadable`)."""

    def __post_init__(self) -> None:
        check_bool(f"{CLEAN_KEY}.readable.verify", self.verify)
        check_int(f"{CLEAN_KEY}.readable.max_pixels", self.max_pixels, 1)


@dataclass
class ModeConfig:
    """Every image leaves in `target` mode: `convert` converts the others (transparent pixels
    are composited onto data.image.clean.background unless the target is RGBA, grey is
    replicated to three channels), `quarantine` removes them (when another mode means
    another camera or pipeline, a reviewer should see them first)."""

    target: str = "RGB"
    """The colour mode every image leaves clean in."""
    policy: str = "convert"
    """`convert` other modes (grey, RGBA) to the target, or `quarantine` them."""

    def __post_init__(self) -> None:
        if self.target not in MODES:
            fail(f"{CLEAN_KEY}.mode.target", self.target, f"one of {', '.join(MODES)}")
        if self.policy not in MODE_POLICIES:
            fail(f"{CLEAN_KEY}.mode.policy", self.policy, f"one of {', '.join(MODE_POLICIES)}")


@dataclass
class SizeConfig:
    """Every image leaves at height x width. `crop` scales the shorter side to fit and cuts the
    centre (no invented pixels), `pad` scales the longer side to fit and pads with pad_value
    (nothing cut away: for defects near an edge). Images whose shorter side is below min_side
    are removed: upscaling them invents the detail a model would learn from."""

    enabled: bool = True
    """Bring every image to height x width (off: images must already have it)."""
    height: int = 64
    """Height every image leaves clean at."""
    width: int = 64
    """Width every image leaves clean at."""
    fit: str = "crop"
    """`crop` (scale the shorter side, cut the centre) or `pad` (scale the longer side, pad)."""
    pad_value: int = 0
    """Grey level of the padding, 0-255 (fit: pad)."""
    min_side: int = 16
    """Images whose shorter side is below this are quarantined, not upscaled."""

    def __post_init__(self) -> None:
        key = f"{CLEAN_KEY}.size"
        check_bool(f"{key}.enabled", self.enabled)
        check_int(f"{key}.height", self.height, 1)
        check_int(f"{key}.width", self.width, 1)
        if self.fit not in FITS:
            fail(f"{key}.fit", self.fit, f"one of {', '.join(FITS)}")
        check_int(f"{key}.pad_value", self.pad_value, 0)
        if self.pad_value > 255:
            fail(f"{key}.pad_value", self.pad_value, "an integer in [0, 255]")
        check_int(f"{key}.min_side", self.min_side, 1)


@dataclass
class ImageDedupConfig:
    """Exact duplicates share a hash of their normalised pixels (so a re-encoded copy counts);
    perceptual duplicates have perceptual hashes within max_distance bits (Hamming). Judged
    within and across splits, train first: a val/test image repeating a train image is a leak."""

    exact: bool = True
    """Quarantine images whose pixels repeat an earlier one, and val/test images that repeat train
    images."""
    perceptual: bool = True
    """Quarantine perceptual duplicates and leaks (perceptual hashes within max_distance bits)."""
    method: str = "phash"
    """Perceptual hash (imagehash); phash, the DCT hash, is steady under small shifts and brightness
    changes."""
    hash_size: int = 8
    """Hash side: the hash has hash_size ** 2 bits."""
    max_distance: int = 8
    """Perceptual duplicates differ in at most this many bits (simulator: near copies <= 8,
    unrelated surfaces >= 12)."""

    def __post_init__(self) -> None:
        key = f"{CLEAN_KEY}.dedup"
        check_bool(f"{key}.exact", self.exact)
        check_bool(f"{key}.perceptual", self.perceptual)
        if self.method not in HASH_METHODS:
            fail(f"{key}.method", self.method, f"one of {', '.join(HASH_METHODS)}")
        check_int(f"{key}.hash_size", self.hash_size, 4)
        check_int(f"{key}.max_distance", self.max_distance, 0)
        if self.max_distance >= self.hash_size**2:
            fail(f"{key}.max_distance", self.max_distance, f"an integer < {self.hash_size**2} "
                  f"(the bits of a hash_size {self.hash_size} hash)")  # fmt: skip


@dataclass
class BlurConfig:
    """Removes images whose variance of the Laplacian (grey, 0-255, at the target size) is
    below min_laplacian_var. Off by default: the threshold is a property of the data (a smooth
    product shot reads as blurry), so declare it after reading the profile's blur quantiles."""

    enabled: bool = False
    """Quarantine blurred images (variance of the Laplacian below the bound; rule `blur`)."""
    min_laplacian_var: float = 20.0
    """Images whose variance of the Laplacian is below this are blurred (simulator: blurred <= 10,
    sharp >= 50)."""

    def __post_init__(self) -> None:
        check_bool(f"{CLEAN_KEY}.blur.enabled", self.enabled)
        check_number(f"{CLEAN_KEY}.blur.min_laplacian_var", self.min_laplacian_var, 0.0)


@dataclass
class ExposureConfig:
    """Removes images whose mean brightness (grey, 0-255) is outside [min_brightness,
    max_brightness]: washed-out or black frames. Off by default for the same reason as blur."""

    enabled: bool = False
    """Quarantine washed-out or black frames by mean brightness (rule `exposure`)."""
    min_brightness: float = 25.0
    """Darkest mean grey level kept (0-255)."""
    max_brightness: float = 230.0
    """Brightest mean grey level kept (0-255)."""

    def __post_init__(self) -> None:
        key = f"{CLEAN_KEY}.exposure"
        check_bool(f"{key}.enabled", self.enabled)
        check_number(f"{key}.min_brightness", self.min_brightness, 0.0, 255.0)
        check_number(f"{key}.max_brightness", self.max_brightness, 0.0, 255.0)
        if self.min_brightness > self.max_brightness:
            raise PipelineError(
                f"{key}.min_brightness = {self.min_brightness} > {key}.max_brightness = "
                f"{self.max_brightness}: expected min_brightness <= max_brightness"
            )


@dataclass
class ImageCleanConfig(CleanSettings, key=CLEAN_KEY):
    """All image cleaning rules; they run in the order of
    pipelines.modalities.image.rules.RULE_ORDER."""

    columns: ClassVar[tuple[str, ...]] = ("image_column",)

    image_column: str = "image"
    """The image column the rules read (`image` after ingest)."""
    background: str = "white"
    """The colour transparent pixels (RGBA, LA, palette images with a transparent entry) are
    composited onto before an image becomes RGB or grey: white, black, grey or "#rrggbb". Clean,
    profile, augment, training and the export folder's scorer all use it (the model card records
    it), so an icon with a transparent background is not a black square."""
    readable: ReadableConfig = field(default_factory=ReadableConfig)
    """Rule 1: bytes Pillow cannot open, verify or fully decode are removed."""
    mode: ModeConfig = field(default_factory=ModeConfig)
    """Rule 2: other colour modes than the target are converted, or removed by policy."""
    size: SizeConfig = field(default_factory=SizeConfig)
    """Rule 3: every image to height x width (centre crop or pad); too small ones are removed,
    since upscaling invents detail."""
    blur: BlurConfig = field(default_factory=BlurConfig)
    """Rule 5 (after exposure: a black frame has no edges either): blurry images removed."""
    exposure: ExposureConfig = field(default_factory=ExposureConfig)
    """Rule 4: images too dark or too bright removed."""
    dedup: ImageDedupConfig = field(default_factory=ImageDedupConfig)
    """Rules 6-7: exact and perceptual-hash duplicates, judged across splits train first (a
    val/test image repeating a train image is a leak)."""

    def __post_init__(self) -> None:
        colour = self.background
        if isinstance(colour, str):
            colour = BACKGROUND_NAMES.get(colour, colour)
        if not isinstance(colour, str) or not re.fullmatch(r"#[0-9a-fA-F]{6}", colour):
            fail(f"{CLEAN_KEY}.background", self.background,
                 f"one of {', '.join(BACKGROUND_NAMES)} or a colour as \"#rrggbb\"")  # fmt: skip
        super().__post_init__()

    @property
    def background_rgb(self) -> tuple[int, int, int]:
        """`background` as (red, green, blue), 0-255."""
        colour = BACKGROUND_NAMES.get(self.background, self.background)
        return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


# --- the profile gates ------------------------------------------------------------------------


@dataclass
class ImageGatesConfig(ProfileGates, key=GATES_KEY):
    """Besides duplicates, leaks and label drift: unreadable files, blur, exposure and
    brightness drift."""

    max_unreadable_rate: float = gate(0.05, "unreadable rate")
    """Largest share of files in a split that may fail to decode."""
    max_blurry_rate: float = gate(0.1, "blurry rate")
    """Largest share of blurred images (judged with data.image.clean.blur's threshold)."""
    max_exposure_rate: float = gate(0.1, "badly exposed rate")
    """Largest share of badly exposed images (judged with data.image.clean.exposure's bounds)."""
    max_brightness_psi: float = gate(0.25, "brightness PSI", DRIFT)
    """Largest train-vs-test PSI of the mean brightness."""


# --- the augmentation policy -------------------------------------------------------------------


@dataclass
class ImageAugmentConfig:
    """The policy. Probabilities are per image; a probability or a strength of 0 turns that
    operation off, so a YAML file lists exactly what changes an image."""

    enabled: bool = True
    """Top classes up with augmented copies and augment every training batch on the fly."""
    min_class_share: float = 0.5
    """Offline top-up: every class reaches at least this share of the largest class's train images;
    class_min_share overrides it for named classes (the rare defects)."""
    class_min_share: dict[str, float] = field(default_factory=dict)
    """Per class, a share of the largest class that overrides min_class_share."""
    horizontal_flip: float = 0.5
    """Probability of a horizontal flip (defects have no preferred orientation, so both flips keep
    the label)."""
    vertical_flip: float = 0.5
    """Probability of a vertical flip."""
    rotation_degrees: float = 15.0
    """Largest rotation in degrees: uniform in [-d, d]."""
    crop_scale: list[float] = field(default_factory=lambda: [0.7, 1.0])
    """Random resized crop: the kept area's share of the image, resized back to full size; [1, 1]
    turns it off. Not too small a share: a crop can cut a small defect out."""
    brightness: float = 0.2
    """Colour jitter: largest relative change of brightness (brightness, contrast and saturation
    factors are drawn in [1 - s, 1 + s])."""
    contrast: float = 0.2
    """Colour jitter: largest relative change of contrast."""
    saturation: float = 0.2
    """Colour jitter: largest relative change of saturation."""
    hue: float = 0.0
    """Colour jitter: largest hue shift (a fraction of the colour circle, at most 0.5)."""
    erasing_probability: float = 0.0
    """Probability of random erasing, on the fly only: a random rectangle (2-33% of the image) set
    to the mean colour."""
    cutmix_probability: float = 0.0
    """Probability of CutMix on a training batch, on the fly only (at most one mixer per batch). Off
    by default: a CutMix box can carry a small defect into a good image (or out of a defect image)
    while the target says "mostly good"; worth trying on large, spread-out defects."""
    cutmix_alpha: float = 1.0
    """Beta distribution parameter of CutMix's mixing share."""
    mixup_probability: float = 0.0
    """Probability that a training batch is mixed with MixUp (soft targets)."""
    mixup_alpha: float = 0.2
    """Beta distribution parameter of MixUp's mixing share."""

    def __post_init__(self) -> None:
        key = AUGMENT_KEY
        check_bool(f"{key}.enabled", self.enabled)
        check_fraction(f"{key}.min_class_share", self.min_class_share)
        if not isinstance(self.class_min_share, dict):
            fail(f"{key}.class_min_share", self.class_min_share, "a mapping class -> share")
        for name, share in self.class_min_share.items():
            if not isinstance(name, str) or not name:
                fail(f"{key}.class_min_share", name, "class names as non-empty strings")
            check_fraction(f"{key}.class_min_share.{name}", share)
        for name in (
            "horizontal_flip",
            "vertical_flip",
            "brightness",
            "contrast",
            "saturation",
            "erasing_probability",
            "cutmix_probability",
            "mixup_probability",
        ):
            check_fraction(f"{key}.{name}", getattr(self, name))
        check_interval(f"{key}.rotation_degrees", self.rotation_degrees, 0, 180, open_low=False)
        check_interval(f"{key}.hue", self.hue, 0, 0.5, open_low=False)
        scale = self.crop_scale
        if (
            not isinstance(scale, list | tuple)
            or len(scale) != 2
            or not all(
                not isinstance(s, bool) and isinstance(s, int | float) and 0 < s <= 1 for s in scale
            )
            or scale[0] > scale[1]
        ):
            fail(f"{key}.crop_scale", scale, "[low, high] with 0 < low <= high <= 1")
        self.crop_scale = [float(s) for s in scale]
        for name in ("cutmix_alpha", "mixup_alpha"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                fail(f"{key}.{name}", value, "a number > 0")
        if self.cutmix_probability + self.mixup_probability > 1:
            fail(
                f"{key}.cutmix_probability + {key}.mixup_probability",
                self.cutmix_probability + self.mixup_probability,
                "at most 1 (one mixer per batch at most)",
            )

    @property
    def mixes(self) -> bool:
        """Whether training batches get soft targets."""
        return self.enabled and self.cutmix_probability + self.mixup_probability > 0


# --- the modality's section of the data config ------------------------------------------------


@dataclass
class ImageProfileConfig:
    gates: ImageGatesConfig = field(default_factory=ImageGatesConfig)
    samples_per_class: int = 8
    """Images per class in the profile's sample grid (profile/samples.png)."""

    def __post_init__(self) -> None:
        check_int("data.image.profile.samples_per_class", self.samples_per_class, 1)


@dataclass
class ImageDataConfig:
    """The image modality's settings (data.modality=image, conf/data/visual_inspection.yaml):
    the same stages run them in place of the tabular sections data.profile/clean/augment.
    The size the model sees is data.image.clean.size (square: height = width)."""

    simulator: ImageSimulatorConfig = field(default_factory=ImageSimulatorConfig)
    profile: ImageProfileConfig = field(default_factory=ImageProfileConfig)
    """The image profile stage: its gates and the sample grid."""
    clean: ImageCleanConfig = field(default_factory=ImageCleanConfig)
    augment: ImageAugmentConfig = field(default_factory=ImageAugmentConfig)
    good_class: str | None = "clean"
    """The class that is not a defect: evaluate reports defect recall and precision at
    evaluate.defect_recall for "any other class"; null when no class is the good one."""
