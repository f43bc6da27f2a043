"""The text models' tokenizer: byte-level BPE trained on the train split with Hugging Face
`tokenizers`, saved as one tokenizer.json that carries normalisation, pre-tokenisation,
padding and truncation, so the export folder encodes raw text exactly as training did.

Byte-level BPE (the GPT-2/RoBERTa scheme) rather than WordPiece: `tokenizers`' WordPiece
trainer is not deterministic (huggingface/tokenizers#1794: the `##` continuation pieces get
ids in hash-map order, and ids break ties between merges; the fix, PR #2066, is not released),
so the same train split gave a different vocabulary on each run, and with it different
models. BPE over the 256 byte symbols starts from a sorted alphabet and is deterministic
(tested, also across processes). It also never emits an unknown token: any text, emoji or
stray mojibake included, is spelled from bytes, so no input is lost at serving time.

Nothing is downloaded: no pretrained vocabulary exists on this machine, and a vocabulary
learned on the train split alone is what keeps validation and test honest.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from tokenizers.processors import TemplateProcessing

from pipelines.errors import PipelineError
from pipelines.modalities.text.rules_config import TOKENIZER_KEY as KEY
from pipelines.modalities.text.rules_config import TokenizerConfig

PAD, CLS = "[PAD]", "[CLS]"
SPECIAL_TOKENS = [PAD, CLS]


def _normalizer(lowercase: bool) -> normalizers.Normalizer:
    # NFKC folds compatibility forms (full-width digits, ligatures) as the cleaning rules do;
    # accents are kept: "résiliation" and "resiliation" are different words to a French team
    steps: list[normalizers.Normalizer] = [normalizers.NFKC()]
    if lowercase:
        steps.append(normalizers.Lowercase())
    return normalizers.Sequence(steps)


def _batches(texts: list[str], size: int = 1000) -> Iterator[list[str]]:
    for start in range(0, len(texts), size):
        yield texts[start : start + size]


def train_tokenizer(texts: Iterable[str], cfg: TokenizerConfig) -> Tokenizer:
    """A byte-level BPE tokenizer learned from `texts` (the train split), with [CLS]
    prepended and padding to / truncation at `cfg.max_length` built in.

    Fails, naming the key, when `cfg.vocab_size` cannot hold the 256 byte symbols and the
    special tokens: the trainer keeps them whatever the limit and would silently return a
    vocabulary larger than the one configured."""
    corpus = list(texts)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = _normalizer(cfg.lowercase)
    # add_prefix_space: a word at the start of a text is spelled as anywhere else
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=cfg.vocab_size,
        min_frequency=cfg.min_frequency,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_batches(corpus), trainer=trainer, length=len(corpus))
    if tokenizer.get_vocab_size() > cfg.vocab_size:
        raise PipelineError(
            f"config key '{KEY}.vocab_size' = {cfg.vocab_size}: byte-level BPE needs "
            f"{tokenizer.get_vocab_size()} entries before it learns a single merge (256 byte "
            f"symbols and {len(SPECIAL_TOKENS)} special tokens); expected a larger vocabulary"
        )
    # [CLS] first: the classifier reads its position, which every text has, however short
    tokenizer.post_processor = TemplateProcessing(
        single=f"{CLS} $A", special_tokens=[(CLS, tokenizer.token_to_id(CLS))]
    )
    tokenizer.enable_truncation(max_length=cfg.max_length)
    tokenizer.enable_padding(
        pad_id=tokenizer.token_to_id(PAD), pad_token=PAD, length=cfg.max_length
    )
    return tokenizer


def save_tokenizer(tokenizer: Tokenizer, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(path))


def load_tokenizer(path: Path) -> Tokenizer:
    if not path.is_file():
        raise PipelineError(f"{path}: no tokenizer.json here; the train stage writes it")
    return Tokenizer.from_file(str(path))


def encode(tokenizer: Tokenizer, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and attention mask (1 for a real token), both (len(texts), max_length)
    int64, the inputs of the exported text model."""
    encodings = tokenizer.encode_batch(texts)
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    return ids, mask
