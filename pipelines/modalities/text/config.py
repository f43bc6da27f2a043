"""The text modality's section of the data config (`data.text`): what its stages read."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.modalities.text.rules_config import (
    TextAugmentConfig,
    TextCleanConfig,
    TextGatesConfig,
    TokenizerConfig,
)
from pipelines.schema.fields import AT_LEAST_ONE, bounded


@dataclass
class TextProfileConfig:
    gates: TextGatesConfig = field(default_factory=TextGatesConfig)
    language_sample: int = bounded(2000, **AT_LEAST_ONE)
    """Langdetect takes about 6 ms a text: the language mix is estimated on a seeded sample of this
    many rows per split (the report says how many it read)"""


@dataclass
class TextDataConfig:
    """The text modality's settings (data.modality=text, conf/data/customer_service.yaml): the
    same stages run them in place of the tabular sections data.profile/clean/augment."""

    profile: TextProfileConfig = field(default_factory=TextProfileConfig)
    """The text profile stage: its gates and the language sample."""
    clean: TextCleanConfig = field(default_factory=TextCleanConfig)
    augment: TextAugmentConfig = field(default_factory=TextAugmentConfig)
    """The text augment stage: EDA copies of rare intents and back-translation."""
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    """The byte-level BPE tokenizer trained on the train split (shipped in the export folder)."""
