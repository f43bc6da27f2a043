"""Text augmentation: each EDA operation does what its name says, rare intents are topped up to
the declared share on the train split, the result is the same with any num_proc, and
back-translation asked for without a local model ends in one line saying it was not run."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from datasets import Dataset

from pipelines.core.augment import AUGMENTED, SOURCE_ID, class_targets, top_up_plan
from pipelines.errors import PipelineError
from pipelines.modalities.text.augment import (
    AUGMENTED_BY,
    DEFAULT_LEXICON,
    BackTranslationConfig,
    TextAugmentConfig,
    augment_train,
    eda,
    load_lexicon,
)

LEXICON = load_lexicon(str(DEFAULT_LEXICON))
TEXT = "my card was stolen and i want a refund for the wrong charge"
ONLY = {"synonym_rate": 0.0, "insert_rate": 0.0, "swap_rate": 0.0, "delete_rate": 0.0}


def only(**rates: float) -> TextAugmentConfig:
    return TextAugmentConfig(**{**ONLY, **rates})


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_synonym_replacement_swaps_lexicon_words_for_members_of_their_set() -> None:
    out = eda(TEXT, rng(), only(synonym_rate=1.0), LEXICON)
    replaced = [w for w in TEXT.split(" ") if w in LEXICON]
    assert replaced == ["card", "stolen", "want", "refund", "wrong", "charge"]
    # rate 1: every lexicon word gave way to a member of its set (some are phrases)
    for word in replaced:
        assert any(synonym in out for synonym in LEXICON[word]), word
    for word in ("stolen", "want", "refund", "wrong", "charge"):  # no set member contains these
        assert word not in out.split(" ")
    # the other words stay, in their order
    kept = [w for w in out.split(" ") if w in {"my", "was", "and", "i", "a", "for", "the"}]
    assert kept == ["my", "was", "and", "i", "a", "for", "the"]


def test_swap_keeps_the_words_and_deletion_keeps_at_least_one() -> None:
    swapped = eda(TEXT, rng(), only(swap_rate=0.3), LEXICON).split(" ")
    assert Counter(swapped) == Counter(TEXT.split(" ")) and swapped != TEXT.split(" ")
    deleted = eda(TEXT, rng(), only(delete_rate=0.5), LEXICON).split(" ")
    assert 1 <= len(deleted) < len(TEXT.split(" "))
    assert all(w in TEXT.split(" ") for w in deleted)
    assert eda("refund", rng(), only(delete_rate=1.0), LEXICON) == "refund"


def test_insertion_adds_synonyms_of_words_in_the_text() -> None:
    out = eda("please refund me", rng(), only(insert_rate=1.0), LEXICON)
    inserted = Counter(out.split(" ")) - Counter(["please", "refund", "me"])
    allowed = {w for word in ("please", "refund") for s in LEXICON[word] for w in s.split(" ")}
    assert inserted and set(inserted) <= allowed


def test_the_same_generator_seed_gives_the_same_ticket() -> None:
    cfg = TextAugmentConfig()
    assert eda(TEXT, rng(7), cfg, LEXICON) == eda(TEXT, rng(7), cfg, LEXICON)


def test_the_plan_tops_each_class_up_to_its_share_of_the_largest_cycling_before_repeating() -> None:
    labels = ["billing"] * 20 + ["fraud"] * 3 + ["refund"] * 12
    plan = top_up_plan(labels, class_targets(labels, 0.5), seed=0)
    counts = Counter(labels[i] for i in plan)
    assert counts == {"fraud": 7}  # 10 wanted, 3 present; refund has 12 >= 10
    fraud_rows = [i for i in plan]
    assert set(fraud_rows[:3]) == {20, 21, 22}  # every row once before any twice


def tickets() -> Dataset:
    texts = [f"please refund the wrong charge number {i}" for i in range(30)]
    texts += [f"my card was stolen yesterday case {i}" for i in range(4)]
    return Dataset.from_dict(
        {"text": texts, "label": ["refund"] * 30 + ["fraud_report"] * 4, "ticket_id": range(34)}
    )


def test_rare_intents_are_topped_up_on_the_train_split_with_marked_copies() -> None:
    train = tickets()
    out, report = augment_train(train, TextAugmentConfig(min_class_share=0.5), seed=0)
    assert Counter(out["label"]) == {"refund": 30, "fraud_report": 15}
    assert report == {
        "added": {"fraud_report": 11},
        "added_by": {"eda": 11},
        "rows_before": 34,
        "rows_after": 45,
    }
    assert out[AUGMENTED_BY] == [None] * 34 + ["eda"] * 11
    # the original rows come first, untouched and unmarked
    assert out.select(range(34))["text"] == train["text"]
    assert out[AUGMENTED] == [False] * 34 + [True] * 11
    assert out[SOURCE_ID][:34] == [-1] * 34
    for row in out.select(range(34, 45)):
        assert row["label"] == train[row[SOURCE_ID]]["label"] == "fraud_report"
        assert row["ticket_id"] == row[SOURCE_ID]


def test_the_augmented_split_is_the_same_with_any_num_proc() -> None:
    cfg = TextAugmentConfig(min_class_share=1.0)
    serial, _ = augment_train(tickets(), cfg, seed=3)
    parallel, _ = augment_train(tickets(), cfg, seed=3, num_proc=2)
    assert serial.to_dict() == parallel.to_dict()


def test_back_translation_without_a_local_model_ends_in_one_line_saying_it_was_not_run() -> None:
    cfg = TextAugmentConfig(back_translation=BackTranslationConfig(enabled=True))
    with pytest.raises(PipelineError, match="back-translation was not run") as error:
        augment_train(tickets(), cfg, seed=0)
    assert "\n" not in str(error.value)


def test_a_bad_lexicon_or_rate_names_the_file_or_key(tmp_path: Path) -> None:
    bad = tmp_path / "lexicon.yaml"
    bad.write_text("synonyms:\n  - [alone]\n")
    with pytest.raises(PipelineError, match=rf"{bad}: synonym set \['alone'\]"):
        load_lexicon(str(bad))
    with pytest.raises(PipelineError, match=r"data\.text\.augment\.swap_rate = 1\.5: expected"):
        TextAugmentConfig(swap_rate=1.5)
