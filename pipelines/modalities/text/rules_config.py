"""Config of the text cleaning rules (pipelines/modalities/text/rules.py): one dataclass per rule
under
`text_clean`, each validated on construction so a bad value fails before any row is read,
with the key, the value and what was expected (e.g. "data.text.clean.length.min_chars = -1:
expected an integer >= 0")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from pipelines.core.config_checks import (
    AFTER_TRAIN,
    DRIFT,
    CleanSettings,
    ProfileGates,
    build_sections,
    check_bool,
    check_fraction,
    check_int,
    check_str,
    check_str_list,
    fail,
    gate,
)
from pipelines.errors import PipelineError

PII_KINDS = ("email", "phone", "card")
UNICODE_FORMS = ("NFC", "NFKC", "NFD", "NFKD")


@dataclass
class NormalizeConfig:
    """Unicode normalisation; ftfy repairs mojibake (UTF-8 read as cp1252/latin-1) first."""

    enabled: bool = True
    """Normalise every text before the other rules (changes in place, removes nothing)."""
    form: str = "NFKC"
    """Unicode normal form; NFKC folds compatibility characters (ﬁ, full-width letters) for the
    tokenizer."""
    fix_mojibake: bool = True
    """Repair mojibake with ftfy before Unicode normalisation."""
    collapse_whitespace: bool = True
    """Collapse runs of whitespace to one space and strip the ends."""

    def __post_init__(self) -> None:
        key = "data.text.clean.normalize"
        check_bool(f"{key}.enabled", self.enabled)
        if self.form not in UNICODE_FORMS:
            fail(f"{key}.form", self.form, f"one of {', '.join(UNICODE_FORMS)}")
        check_bool(f"{key}.fix_mojibake", self.fix_mojibake)
        check_bool(f"{key}.collapse_whitespace", self.collapse_whitespace)


@dataclass
class PiiConfig:
    """Masks personal data in place (the row stays); counts what it masked per kind."""

    enabled: bool = True
    """Mask personal data in place (the row stays)."""
    kinds: list[str] = field(default_factory=lambda: list(PII_KINDS))
    """Which kinds of personal data are masked (email, phone, card; cards Luhn-checked)."""
    email_token: str = "<EMAIL>"
    """What an e-mail address is replaced with."""
    phone_token: str = "<PHONE>"
    """What a phone number is replaced with."""
    card_token: str = "<CARD>"
    """What a card number is replaced with."""

    def __post_init__(self) -> None:
        key = "data.text.clean.pii"
        check_bool(f"{key}.enabled", self.enabled)
        check_str_list(f"{key}.kinds", self.kinds, PII_KINDS)
        for kind in PII_KINDS:
            check_str(f"{key}.{kind}_token", getattr(self, f"{kind}_token"))

    def token(self, kind: str) -> str:
        return getattr(self, f"{kind}_token")


@dataclass
class EmptyConfig:
    """Removes texts that are empty, whitespace only or missing (null)."""

    enabled: bool = True
    """Quarantine empty and whitespace-only texts (rule `empty`)."""

    def __post_init__(self) -> None:
        check_bool("data.text.clean.empty.enabled", self.enabled)


@dataclass
class LengthConfig:
    """Removes texts outside [min_chars, max_chars] characters, counted after normalisation and
    masking (what the model will see)."""

    enabled: bool = True
    """Quarantine texts outside [min_chars, max_chars] (rule `length`)."""
    min_chars: int = 10
    """Shortest text kept, in characters."""
    max_chars: int = 512
    """Longest text kept, in characters."""

    def __post_init__(self) -> None:
        key = "data.text.clean.length"
        check_bool(f"{key}.enabled", self.enabled)
        check_int(f"{key}.min_chars", self.min_chars, 0)
        check_int(f"{key}.max_chars", self.max_chars, 1)
        if self.min_chars > self.max_chars:
            raise PipelineError(
                f"{key}.min_chars = {self.min_chars} > {key}.max_chars = {self.max_chars}: "
                "expected min_chars <= max_chars"
            )


@dataclass
class LanguageConfig:
    """Removes texts an offline detector (langdetect) is confident are not in `allowed`.

    A text is removed only when the detector gives the languages outside `allowed` a total
    probability >= min_confidence. langdetect votes over 7 random trials, so probabilities
    move in steps of 1/7: 0.9 means every trial voted for a language outside the allow-list.
    Texts with fewer than min_chars letters are kept unjudged: too few n-grams to tell.
    """

    enabled: bool = True
    """Quarantine texts langdetect judges to be in a language not allowed (rule `language`)."""
    allowed: list[str] = field(default_factory=lambda: ["en"])
    """ISO 639-1 codes of the languages kept."""
    min_confidence: float = 0.9
    """A text is removed only when langdetect is at least this sure of another language."""
    min_chars: int = 20
    """Texts with fewer letters are not judged (langdetect misreads short texts)."""
    seed: int = 0
    """langdetect samples n-grams at random; a fixed seed makes it deterministic."""

    def __post_init__(self) -> None:
        key = "data.text.clean.language"
        check_bool(f"{key}.enabled", self.enabled)
        check_str_list(f"{key}.allowed", self.allowed)
        if not self.allowed:
            fail(f"{key}.allowed", self.allowed, "a non-empty list of language codes")
        check_fraction(f"{key}.min_confidence", self.min_confidence, open_low=True)
        check_int(f"{key}.min_chars", self.min_chars, 0)
        check_int(f"{key}.seed", self.seed, 0)


@dataclass
class AbuseConfig:
    """Removes texts with at least min_count abusive words, or where abusive words are at
    least min_share of the words (a short all-insult line). One swear word in a long complaint
    stays: complaints are a class to learn, not noise."""

    enabled: bool = True
    """Quarantine abusive texts by the word list (rule `abuse`)."""
    min_count: int = 2
    """Abusive words a text needs before it is removed."""
    min_share: float = 0.25
    """Or: the share of its words that are abusive at which a text is removed."""
    extra_words: list[str] = field(default_factory=list)
    """Words added to the built-in abusive-word list."""

    def __post_init__(self) -> None:
        key = "data.text.clean.abuse"
        check_bool(f"{key}.enabled", self.enabled)
        check_int(f"{key}.min_count", self.min_count, 1)
        check_fraction(f"{key}.min_share", self.min_share, open_low=True)
        check_str_list(f"{key}.extra_words", self.extra_words)


@dataclass
class DedupConfig:
    """Exact (case/whitespace-insensitive) and MinHash near-duplicate removal, within splits
    and across them (a val/test row that repeats a train row is a leak)."""

    exact: bool = True
    """Quarantine exact duplicates within a split and val/test texts that repeat train texts."""
    near: bool = True
    """Quarantine near duplicates and near leaks (MinHash + LSH, datasketch)."""
    threshold: float = 0.7
    """Near duplicates: estimated Jaccard similarity of word shingles at or above this."""
    num_perm: int = 128
    """MinHash permutations (more: a finer Jaccard estimate, slower)."""
    shingle_size: int = 2
    """Words per shingle; short tickets need short shingles."""
    seed: int = 1
    """Seed of the MinHash permutations."""

    def __post_init__(self) -> None:
        key = "data.text.clean.dedup"
        check_bool(f"{key}.exact", self.exact)
        check_bool(f"{key}.near", self.near)
        check_fraction(f"{key}.threshold", self.threshold, open_low=True)
        check_int(f"{key}.num_perm", self.num_perm, 2)
        check_int(f"{key}.shingle_size", self.shingle_size, 1)
        check_int(f"{key}.seed", self.seed, 0)


@dataclass
class TextCleanConfig(CleanSettings, key="data.text.clean"):
    """All text cleaning rules; they run in the order of rules.RULE_ORDER."""

    columns: ClassVar[tuple[str, ...]] = ("text_column",)

    text_column: str = "text"
    """The text column the rules read (`text` after ingest)."""
    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)
    """Rule 1: mojibake repaired (ftfy), Unicode normalised, whitespace collapsed."""
    pii: PiiConfig = field(default_factory=PiiConfig)
    """Rule 2, before any removal so the quarantine holds no raw personal data: e-mails,
    phone numbers and Luhn-valid card numbers masked."""
    empty: EmptyConfig = field(default_factory=EmptyConfig)
    """Rule 3: empty, whitespace-only and missing texts removed."""
    length: LengthConfig = field(default_factory=LengthConfig)
    """Rule 4: texts outside the character bounds removed."""
    language: LanguageConfig = field(default_factory=LanguageConfig)
    """Rule 5: texts an offline detector is confident are in no allowed language removed."""
    abuse: AbuseConfig = field(default_factory=AbuseConfig)
    """Rule 6: texts with too many words from the abusive-word list removed."""
    dedup: DedupConfig = field(default_factory=DedupConfig)
    """Rules 7-8: exact and MinHash near duplicates, judged across splits train first (a
    val/test row repeating a train row is a leak)."""


# --- the other text stages' settings: here, free of heavy imports, so pipelines.config can
# declare them in the structured config without importing datasets or tokenizers

AUGMENT_KEY = "data.text.augment"
GATES_KEY = "data.text.profile.gates"
TOKENIZER_KEY = "data.text.tokenizer"


@dataclass
class BackTranslationConfig:
    enabled: bool = False
    """Also augment by back-translation through a `transformers` model (needs the model locally:
    nothing is downloaded)."""
    model: str = "Helsinki-NLP/opus-mt-en-de"
    """A Hugging Face translation model id (or local path) that translates out of the texts'
    language."""
    reverse_model: str = "Helsinki-NLP/opus-mt-de-en"
    """The model that translates back into the texts' language."""
    share: float = 0.5
    """Share of the top-up copies made by back-translation (drawn per copy with the seed); EDA
    makes the rest, and any copy whose translation came out empty."""
    batch_size: int = 16
    """Texts per generate() call of each model."""
    max_length: int = 128
    """Tokens a text is cut to on the way into a model, and the most a model may write."""
    sample: bool = True
    """Sample the translations (torch seeded with the run's seed: two copies of one ticket differ,
    the same seed gives the same copies) instead of greedy decoding."""

    def __post_init__(self) -> None:
        key = f"{AUGMENT_KEY}.back_translation"
        check_bool(f"{key}.enabled", self.enabled)
        check_str(f"{key}.model", self.model)
        check_str(f"{key}.reverse_model", self.reverse_model)
        check_fraction(f"{key}.share", self.share)
        check_int(f"{key}.batch_size", self.batch_size, 1)
        check_int(f"{key}.max_length", self.max_length, 1)
        check_bool(f"{key}.sample", self.sample)


@dataclass
class TextAugmentConfig:
    enabled: bool = True
    """Top rare intents up with EDA copies of their own texts."""
    min_class_share: float = 0.5
    """Every class is topped up to at least this share of the largest class's train rows."""
    synonym_rate: float = 0.1
    """EDA synonym replacement: words replaced, as a share of the text's words (per generated
    ticket)."""
    insert_rate: float = 0.1
    """EDA random insertion: synonyms inserted, as a share of the text's words."""
    swap_rate: float = 0.1
    """EDA random swap: word swaps, as a share of the text's words."""
    delete_rate: float = 0.1
    """Probability of deleting each word (EDA random deletion)."""
    lexicon: str | None = None
    """The synonym lexicon (YAML); null: pipelines/modalities/text/data/lexicon.yaml."""
    back_translation: BackTranslationConfig = field(default_factory=BackTranslationConfig)
    """Back-translation through local `transformers` models (off by default)."""

    def __post_init__(self) -> None:
        check_bool(f"{AUGMENT_KEY}.enabled", self.enabled)
        for name in ("min_class_share", "synonym_rate", "insert_rate", "swap_rate", "delete_rate"):
            check_fraction(f"{AUGMENT_KEY}.{name}", getattr(self, name))
        if self.lexicon is not None:
            check_str(f"{AUGMENT_KEY}.lexicon", self.lexicon)
        build_sections(self, AUGMENT_KEY)


@dataclass
class TextGatesConfig(ProfileGates, key=GATES_KEY):
    """Besides duplicates, leaks and label drift: abuse, foreign languages, words unseen in
    train and length drift."""

    max_abusive_rate: float = gate(0.1, "abusive rate")
    """Largest share of texts the abuse rule would flag."""
    max_foreign_rate: float = gate(0.2, "foreign-language rate")
    """Largest share of rows in no allowed language."""
    max_oov_rate: float = gate(0.2, "out-of-vocabulary rate", AFTER_TRAIN)
    """Largest share of val/test words never seen in train."""
    max_length_psi: float = gate(0.25, "length PSI", DRIFT)
    """Largest train-vs-test PSI of the character length."""


@dataclass
class TokenizerConfig:
    vocab_size: int = 8000
    """Entries of the byte-level BPE vocabulary trained on the train split (at least 258)."""
    min_frequency: int = 2
    """A word piece seen fewer times in train is not learned."""
    max_length: int = 128
    """Tokens per text, [CLS] included; longer texts are truncated."""
    lowercase: bool = True
    """Lowercase texts before tokenising."""

    def __post_init__(self) -> None:
        for key, low in (
            ("vocab_size", 1),
            ("min_frequency", 1),
            ("max_length", 2),
        ):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise PipelineError(
                    f"config key '{TOKENIZER_KEY}.{key}' = {value!r}: expected an integer >= {low}"
                )
