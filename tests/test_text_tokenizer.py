"""The text tokenizer: byte-level BPE learned from the train split, saved as one tokenizer.json
that reproduces the encoding (normalisation, [CLS], padding, truncation) when loaded alone;
deterministic, also across processes; spells any text without an unknown token; a vocabulary
too small for the data fails naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipelines.errors import PipelineError
from pipelines.modalities.text.tokenizer import (
    CLS,
    PAD,
    TokenizerConfig,
    encode,
    load_tokenizer,
    save_tokenizer,
    train_tokenizer,
)

TRAIN = [
    "My card was stolen yesterday, please block it",
    "I want a refund for the double charge on my account",
    "The app crashes when I open my statement",
    "Please block my card, I lost it at the station",
    "Refund the charge from last week please",
    "I cannot log in to my account since the update",
] * 20


def test_a_saved_tokenizer_encodes_exactly_as_the_trained_one(tmp_path: Path) -> None:
    cfg = TokenizerConfig(vocab_size=400, min_frequency=1, max_length=16)
    tokenizer = train_tokenizer(TRAIN, cfg)
    save_tokenizer(tokenizer, tmp_path / "tokenizer.json")
    loaded = load_tokenizer(tmp_path / "tokenizer.json")

    texts = ["Block my CARD please", "refund", "x " * 40, ""]
    ids, mask = encode(tokenizer, texts)
    loaded_ids, loaded_mask = encode(loaded, texts)
    assert np.array_equal(ids, loaded_ids) and np.array_equal(mask, loaded_mask)
    assert ids.shape == mask.shape == (4, 16) and ids.dtype == np.int64
    # [CLS] leads every text, even the empty one; padding fills the rest and is masked out
    assert (ids[:, 0] == tokenizer.token_to_id(CLS)).all()
    assert mask[3].tolist() == [1] + [0] * 15
    assert (ids[3, 1:] == tokenizer.token_to_id(PAD)).all()
    # truncated at max_length
    assert mask[2].sum() == 16


def test_round_trip_gives_the_normalised_text_back() -> None:
    tokenizer = train_tokenizer(TRAIN, TokenizerConfig(vocab_size=400, min_frequency=1))
    for text in ["Please BLOCK my card", "Ünïcode ﬁne, émoji 🙂 and zzqq never seen"]:
        ids = tokenizer.encode(text).ids
        assert tokenizer.decode(ids).strip() == tokenizer.normalizer.normalize_str(text)
    # words of the train split are single pieces; unseen ones are spelled from bytes
    assert sum(tokenizer.encode("refund").attention_mask) == 2  # [CLS] + the word
    assert sum(tokenizer.encode("zzqq").attention_mask) > 2


TRAIN_IN_A_FRESH_PROCESS = """
import hashlib, sys
sys.path.insert(0, {root!r})
from tests.test_text_tokenizer import TRAIN
from pipelines.modalities.text.tokenizer import TokenizerConfig, train_tokenizer
cfg = TokenizerConfig(vocab_size=300, min_frequency=2)
print(hashlib.sha256(train_tokenizer(TRAIN, cfg).to_str().encode()).hexdigest())
"""


def test_training_on_the_same_split_gives_the_same_tokenizer_in_any_process() -> None:
    root = str(Path(__file__).resolve().parents[1])
    code = TRAIN_IN_A_FRESH_PROCESS.format(root=root)
    digests = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
        ).stdout.strip()
        for _ in range(3)
    }
    assert len(digests) == 1 and len(digests.pop()) == 64


def test_a_vocabulary_smaller_than_the_byte_alphabet_fails_naming_the_key() -> None:
    with pytest.raises(
        PipelineError, match=r"'data\.text\.tokenizer\.vocab_size' = 200: .*256 byte"
    ):
        train_tokenizer(TRAIN, TokenizerConfig(vocab_size=200))


@pytest.mark.parametrize(
    ("key", "value"), [("vocab_size", 0), ("min_frequency", 0), ("max_length", True)]
)
def test_bad_settings_fail_naming_the_key(key: str, value: object) -> None:
    with pytest.raises(PipelineError, match=rf"'data\.text\.tokenizer\.{key}' = {value!r}"):
        TokenizerConfig(**{key: value})


def test_a_missing_tokenizer_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="tokenizer.json here"):
        load_tokenizer(tmp_path / "tokenizer.json")
