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
    rows: int | None = bounded(100_000, **AT_LEAST_ONE)
    n_days: int = bounded(90, **AT_LEAST_ONE)
    # kind=file: the file (read by the `datasets` builder for `format`, else its suffix);
    # kind=hub: the Hugging Face hub dataset id (owner/name), all its splits concatenated;
    # kind=aeon: a UEA/UCR set the aeon package ships (BasicMotions, ACSF1); kind=ts: a .ts
    # file (its _TEST twin, when beside it, is the test split)
    path: str | None = None
    format: str | None = None


@dataclass
class SchemaConfig:
    label: str = "label"
    positive_class: str = "1"
    time_column: str | None = None
    id_columns: list[str] = field(default_factory=list)
    # the entity whose history the sequence models read (e.g. customer_id)
    sequence_key: str | None = None
    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    # data.modality=text: the column holding the text (renamed `text` after ingest)
    text: str | None = None
    # data.modality=image: the column holding the images (renamed `image` after ingest)
    image: str | None = None

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]


@dataclass
class SplitConfig:
    method: str = "stratified"
    val_fraction: float = bounded(0.15, gt=0.0, lt=1.0)
    test_fraction: float = bounded(0.15, gt=0.0, lt=1.0)


@dataclass
class DataConfig:
    name: str = "data"
    # which plug-ins the stages run: tabular (pipelines/modalities/tabular/cleaning.py, ...), text
    # (pipelines/modalities/text/) or image (pipelines/modalities/image/); every data config
    # declares `text`,
    # `image` and the tabular sections, since dvc.yaml tracks the same keys whatever the
    # modality
    modality: str = "tabular"
    source: SourceConfig = field(default_factory=SourceConfig)
    schema: SchemaConfig = field(default_factory=SchemaConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    clean: CleanConfig = field(default_factory=CleanConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    text: TextDataConfig = field(default_factory=TextDataConfig)
    image: ImageDataConfig = field(default_factory=ImageDataConfig)
    timeseries: TimeseriesDataConfig = field(default_factory=TimeseriesDataConfig)
    # processes for the batched `datasets` maps of ingest and clean (conform, cleaning rules,
    # imputation, feature encoding); None: in process. The output files are the same bytes
    # either way, so dvc.yaml does not declare it: changing it reruns nothing
    num_proc: int | None = bounded(None, **AT_LEAST_ONE)


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
