"""data: where the rows come from, their schema and split, and each modality's own settings
(its section dataclasses live with the modality)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.modalities.image.config import ImageDataConfig
from pipelines.modalities.tabular.config import AugmentConfig, CleanConfig, ProfileConfig
from pipelines.modalities.text.config import TextDataConfig
from pipelines.modalities.timeseries.config import TimeseriesDataConfig
from pipelines.schema.fields import AT_LEAST_ONE, bounded


@dataclass
class SourceConfig:
    kind: str = "simulator"
    """Where the rows come from: the seeded simulator of the modality, a user's file, a packaged
    real data set, a Hugging Face hub dataset, an image folder."""
    rows: int | None = bounded(100_000, **AT_LEAST_ONE)
    """Rows (transactions, tickets or images) the simulator writes; null: the source's own size."""
    n_days: int = bounded(90, **AT_LEAST_ONE)
    """Days of simulated transactions after the burn-in (tabular simulator)."""
    path: str | None = None
    """kind=file: the file (read by the `datasets` builder for `format`, else its suffix); kind=hub:
    the Hugging Face hub dataset id (owner/name), all its splits concatenated; kind=aeon: a
    UEA/UCR set the aeon package ships (BasicMotions, ACSF1); kind=ts: a .ts file (its _TEST
    twin, when beside it, is the test split)."""
    format: str | None = None
    """kind=file: the `datasets` builder that reads it; null: taken from the file's suffix."""


@dataclass
class SchemaConfig:
    label: str = "label"
    """The label column (renamed `label` after ingest)."""
    positive_class: str = "1"
    """The label value counted as positive in a binary table (read as a string)."""
    time_column: str | None = None
    """The event time column; the time split and the sequence models' history order read it."""
    id_columns: list[str] = field(default_factory=list)
    """Identifier columns kept through the stages but never used as features."""
    sequence_key: str | None = None
    """The entity whose history the sequence models read (e.g. customer_id)."""
    numeric: list[str] = field(default_factory=list)
    """Numeric feature columns (standardised inside the model)."""
    categorical: list[str] = field(default_factory=list)
    """Categorical feature columns (one-hot encoded with the train split's categories)."""
    text: str | None = None
    """data.modality=text: the column holding the text (renamed `text` after ingest)."""
    image: str | None = None
    """data.modality=image: the column holding the images (renamed `image` after ingest)."""
    infer: bool = False
    """Tables: infer the feature columns not declared in numeric/categorical (numbers numeric,
    strings and booleans categorical; constant and id-like columns left out with a note).
    Inference also runs when both lists are empty; ingest prints what it inferred and writes it
    into data/ingested/schema.json."""
    max_categories: int = bounded(50, ge=2)
    """Inference: a string column with more distinct values than this is left out (free text or
    a key), not one-hot encoded."""

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]


@dataclass
class SplitConfig:
    method: str = "stratified"
    """`time`: the last days are val and test (series: the last part of every series' clock);
    `stratified`: a random split that keeps the label shares (series: whole series)."""
    val_fraction: float = bounded(0.15, gt=0.0, lt=1.0)
    """Share of rows (or of days, for the time split) in the validation split."""
    test_fraction: float = bounded(0.15, gt=0.0, lt=1.0)
    """Share of rows (or of days, for the time split) in the test split; val and test together stay
    below 1."""


@dataclass
class DataConfig:
    name: str = "data"
    """The data set's name; it names runs, W&B groups and export versions."""
    modality: str = "tabular"
    """Which plug-ins the stages run: tabular (pipelines/modalities/tabular/cleaning.py, ...), text
    (pipelines/modalities/text/) or image (pipelines/modalities/image/); every data config declares
    `text`, `image` and the tabular sections, since dvc.yaml tracks the same keys whatever the
    modality."""
    source: SourceConfig = field(default_factory=SourceConfig)
    """Where the rows come from."""
    schema: SchemaConfig = field(default_factory=SchemaConfig)
    """Which columns are the label, the features, the time and the ids."""
    split: SplitConfig = field(default_factory=SplitConfig)
    """How rows are split into train, val and test."""
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    """The tabular profile stage's quality gates."""
    clean: CleanConfig = field(default_factory=CleanConfig)
    """The tabular clean stage's rules; removed rows go to the quarantine with their rule."""
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    """The tabular augment stage: resampling of the train split."""
    text: TextDataConfig = field(default_factory=TextDataConfig)
    image: ImageDataConfig = field(default_factory=ImageDataConfig)
    timeseries: TimeseriesDataConfig = field(default_factory=TimeseriesDataConfig)
    num_proc: int | None = bounded(None, **AT_LEAST_ONE)
    """Processes for the batched `datasets` maps of ingest and clean (conform, cleaning rules,
    imputation, feature encoding); None: in process. The output files are the same bytes either way,
    so dvc.yaml does not declare it: changing it reruns nothing."""


CHOICES: dict[str, tuple[str, ...]] = {
    "data.source.kind": (
        "simulator",
        "file",
        "german_credit",
        "rotten_tomatoes",
        "hub",
        "imagefolder",
        "digits",
        "aeon",
        "ts",
    ),
    "data.source.format": ("csv", "parquet", "json", "text"),
    "data.split.method": ("time", "stratified"),
}
