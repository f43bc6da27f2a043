"""Back-translation for real: each picked ticket goes out of its language through one local
seq2seq model and back through another (pipelines/modalities/text/back_translation.py). The
plumbing is tested with two tiny random-weight BART models and a word-level tokenizer this test
trains and saves to a temporary folder (nothing comes from a hub), so the words that come back
are random: what is checked is that rows are added to the rare class only, keep its label, are
marked `augmented_by: back_translation`, that both models ran, in batches, and that the same
seed gives the same rows."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import BartConfig, BartForConditionalGeneration, PreTrainedTokenizerFast

from pipelines.core.augment import AUGMENTED, SOURCE_ID
from pipelines.errors import PipelineError
from pipelines.modalities.text.augment import (
    AUGMENTED_BY,
    BackTranslationConfig,
    TextAugmentConfig,
    augment_train,
)


def tickets() -> Dataset:
    texts = [f"please refund the wrong charge number {i}" for i in range(30)]
    texts += [f"my card was stolen yesterday case {i}" for i in range(4)]
    return Dataset.from_dict(
        {"text": texts, "label": ["refund"] * 30 + ["fraud_report"] * 4, "ticket_id": range(34)}
    )


def save_tiny_translator(folder: Path, texts: list[str], seed: int) -> Path:
    """A 1-layer BART with random weights and a word-level tokenizer trained on `texts`, saved
    as AutoModelForSeq2SeqLM and AutoTokenizer load them."""
    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.decoder = decoders.WordPiece()  # joins the words with spaces
    specials = ["<pad>", "<s>", "</s>", "[UNK]"]
    tokenizer.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=specials))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="[UNK]",
    )
    # one layer each side, 2 heads, width 16: the ids are the tokenizer's special tokens
    sides = {"layers": 1, "attention_heads": 2, "ffn_dim": 32}
    sizes = {f"{side}_{key}": v for side in ("encoder", "decoder") for key, v in sides.items()}
    ids = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}
    config = BartConfig(
        vocab_size=fast.vocab_size,
        d_model=16,
        max_position_embeddings=64,
        decoder_start_token_id=2,
        forced_eos_token_id=2,
        **sizes,
        **ids,
    )
    torch.manual_seed(seed)
    BartForConditionalGeneration(config).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def translators(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    texts = tickets()["text"][:]
    root = tmp_path_factory.mktemp("translators")
    forward = save_tiny_translator(root / "en-xx", texts, seed=1)
    reverse = save_tiny_translator(root / "xx-en", texts, seed=2)
    return str(forward), str(reverse)


@pytest.fixture
def generate_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every generate() call: (the model's folder, texts in the batch)."""
    calls: list[tuple[str, int]] = []
    original = BartForConditionalGeneration.generate

    def spy(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append((Path(self.name_or_path).name, len(kwargs["input_ids"])))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(BartForConditionalGeneration, "generate", spy)
    return calls


def policy(forward: str, reverse: str, **changes: object) -> TextAugmentConfig:
    settings = {"share": 1.0, "batch_size": 4, "max_length": 16, **changes}
    back = BackTranslationConfig(enabled=True, model=forward, reverse_model=reverse, **settings)
    return TextAugmentConfig(min_class_share=0.5, back_translation=back)


def test_the_rare_class_is_topped_up_with_back_translations_that_keep_its_label(
    translators: tuple[str, str], generate_calls: list[tuple[str, int]]
) -> None:
    train = tickets()
    out, report = augment_train(train, policy(*translators), seed=0)
    assert Counter(out["label"]) == {"refund": 30, "fraud_report": 15}
    assert report["added"] == {"fraud_report": 11}
    assert report["added_by"] == {"back_translation": 11}
    generated = out.select(range(34, 45))
    assert generated[AUGMENTED] == [True] * 11
    assert set(generated["label"]) == {"fraud_report"}
    assert all(train[source]["label"] == "fraud_report" for source in generated[SOURCE_ID])
    assert generated[AUGMENTED_BY] == ["back_translation"] * 11
    assert out.select(range(34))[AUGMENTED_BY] == [None] * 34
    # what came back is new text from the models' vocabulary, not a copy of its source
    assert all(text.strip() for text in generated["text"])
    sources = {train[s]["text"] for s in generated[SOURCE_ID]}
    assert not sources & set(generated["text"])
    # forward model first, then the reverse one, 11 texts in batches of at most 4 each
    assert [name for name, _ in generate_calls] == ["en-xx"] * 3 + ["xx-en"] * 3
    assert [size for _, size in generate_calls] == [4, 4, 3, 4, 4, 3]


def test_the_same_seed_gives_the_same_rows_and_another_seed_other_ones(
    translators: tuple[str, str],
) -> None:
    cfg = policy(*translators)
    first, _ = augment_train(tickets(), cfg, seed=3)
    again, _ = augment_train(tickets(), cfg, seed=3)
    other, _ = augment_train(tickets(), cfg, seed=4)
    assert first.to_dict() == again.to_dict()
    assert first["text"][34:] != other["text"][34:]


def test_a_share_splits_the_copies_between_back_translation_and_eda(
    translators: tuple[str, str], generate_calls: list[tuple[str, int]]
) -> None:
    out, report = augment_train(tickets(), policy(*translators, share=0.5), seed=0)
    made = Counter(out[AUGMENTED_BY][34:])
    assert made == report["added_by"]
    assert made["back_translation"] > 0 and made["eda"] > 0
    assert sum(made.values()) == 11
    assert sum(size for name, size in generate_calls if name == "en-xx") == made["back_translation"]


def test_a_missing_model_or_a_bad_setting_is_named_in_one_line(
    translators: tuple[str, str], tmp_path: Path
) -> None:
    forward, _ = translators
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(PipelineError, match="back_translation.reverse_model") as error:
        augment_train(tickets(), policy(forward, missing), seed=0)
    assert "back-translation was not run" in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(PipelineError, match=r"data\.text\.augment\.back_translation\.share"):
        BackTranslationConfig(share=1.5)
    with pytest.raises(PipelineError, match=r"back_translation\.batch_size"):
        BackTranslationConfig(batch_size=0)
