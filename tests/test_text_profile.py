"""The text profile: rates that match what was planted (duplicates, leaks, abuse, foreign
lines, unseen words), label and length drift, gates that name their key, and the PNG/HTML
report beside the JSON."""

from __future__ import annotations

from pathlib import Path

import pytest
from datasets import Dataset

from pipelines.errors import PipelineError
from pipelines.modalities.text.profile import (
    TextGatesConfig,
    check_text_gates,
    profile_text_splits,
    text_profile_html,
    text_profile_png,
)
from pipelines.modalities.text.rules_config import TextCleanConfig
from pipelines.modalities.text.simulator import NO_DIRT, TicketDirt, simulate_tickets

RULES = TextCleanConfig()


def split(texts: list[str], labels: list[str]) -> Dataset:
    return Dataset.from_dict({"text": texts, "label": labels})


def hand_made() -> dict[str, Dataset]:
    train = split(
        [
            "my card was stolen last night please block it",
            "i would like a refund for the double charge",
            "i would like a refund for the double charge",  # an exact duplicate
            "the app crashes every time i open my statement",
        ],
        ["card_lost", "refund", "refund", "technical"],
    )
    val = split(
        ["my card was stolen last night please block it", "where is my parcel"],
        ["card_lost", "delivery"],
    )
    test = split(
        ["the app crashes every time i open my statement", "you idiot you moron fix it"],
        ["technical", "complaint"],
    )
    return {"train": train, "val": val, "test": test}


def test_the_profile_counts_what_was_planted() -> None:
    report = profile_text_splits(hand_made(), RULES)
    train, val, test = (report["splits"][n] for n in ("train", "val", "test"))
    assert train["rows"] == 4 and train["duplicate_rate"] == 0.25
    assert train["exact_duplicate_rate"] == 0.25 and train["leak_rate"] == 0.0
    assert val["leak_rate"] == 0.5 and test["leak_rate"] == 0.5  # each repeats a train row
    assert test["abusive_rate"] == 0.5
    assert train["labels"] == {"card_lost": 1, "refund": 2, "technical": 1}
    # val: "where is my parcel" -> "where", "is", "parcel" unseen, "my" seen; plus 9 seen words
    assert val["oov_rate"] == pytest.approx(3 / 13)
    assert train["oov_rate"] is None
    assert report["train_vocabulary_size"] == 24  # 9 + 9 + 6 new in the third line
    assert train["chars"]["max"] == len("the app crashes every time i open my statement")


def test_a_dirty_simulated_corpus_reads_dirtier_than_a_clean_one() -> None:
    clean = simulate_tickets(400, seed=1, dirt=NO_DIRT)
    dirty = simulate_tickets(400, seed=1, dirt=TicketDirt(foreign=0.1, abusive=0.1))
    reports = {
        name: profile_text_splits(
            {"train": ds.select(range(300)), "test": ds.select(range(300, 400))}, RULES
        )
        for name, ds in (("clean", clean), ("dirty", dirty))
    }
    clean_train, dirty_train = (reports[n]["splits"]["train"] for n in ("clean", "dirty"))
    assert clean_train["foreign_rate"] == 0.0 and clean_train["abusive_rate"] == 0.0
    assert 0.05 < dirty_train["foreign_rate"] < 0.2
    assert 0.05 < dirty_train["abusive_rate"] < 0.2
    assert set(dirty_train["languages"]) - {"en", "?"}  # the foreign lines were recognised


def test_label_drift_shows_when_test_holds_one_class_only() -> None:
    ds = simulate_tickets(600, seed=2, dirt=NO_DIRT)
    labels = ds["label"][:]
    one_class = ds.filter(lambda row: row["label"] == labels[0])
    steady = profile_text_splits(
        {"train": ds.select(range(400)), "test": ds.select(range(400, 600))}, RULES
    )
    drifted = profile_text_splits({"train": ds.select(range(400)), "test": one_class}, RULES)
    assert steady["drift"]["label_psi"] < 0.1
    assert drifted["drift"]["label_psi"] > 1.0


def test_gates_name_the_split_the_figure_and_the_key(tmp_path: Path) -> None:
    report = profile_text_splits(hand_made(), RULES)
    failures = check_text_gates(report, TextGatesConfig(min_rows=3, min_class_rows=2))
    assert "val: 2 rows < data.text.profile.gates.min_rows = 3" in failures
    leak = (
        "leak rate (duplicates of train rows) 0.5000 > data.text.profile.gates.max_leak_rate = 0.05"
    )
    assert f"test: {leak}" in failures
    assert "test: abusive rate 0.5000 > data.text.profile.gates.max_abusive_rate = 0.1" in failures
    assert (
        "train: label 'card_lost' has 1 rows < data.text.profile.gates.min_class_rows = 2"
        in failures
    )
    loose = TextGatesConfig(
        min_rows=0, min_class_rows=0, max_duplicate_rate=1, max_leak_rate=1,
        max_abusive_rate=1, max_oov_rate=1, max_length_psi=100, max_label_psi=100,
    )  # fmt: skip
    assert check_text_gates(report, loose) == []

    text_profile_png(report, tmp_path / "profile.png")
    text_profile_html(report, tmp_path / "profile.png", tmp_path / "profile.html", failures)
    assert (tmp_path / "profile.png").read_bytes()[:4] == b"\x89PNG"
    page = (tmp_path / "profile.html").read_text()
    assert "Failed gates" in page and "max_leak_rate" in page


def test_a_gate_of_the_wrong_type_names_its_key() -> None:
    with pytest.raises(
        PipelineError, match=r"data.text.profile.gates\.max_leak_rate = 2: expected"
    ):
        TextGatesConfig(max_leak_rate=2)
