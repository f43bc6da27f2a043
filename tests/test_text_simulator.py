"""Specification of the customer-service ticket simulator
(pipelines/modalities/text/simulator.py)."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import fields

import datasets
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from pipelines.errors import PipelineError
from pipelines.modalities.text.pii import luhn_valid
from pipelines.modalities.text.simulator import NO_DIRT, TicketDirt, simulate_tickets
from pipelines.modalities.text.ticket_phrases import FOREIGN, INTENT_SHARES

N = 4000


@pytest.fixture(scope="module")
def tickets() -> datasets.Dataset:
    return simulate_tickets(N, seed=17, with_dirt_column=True)


def test_columns_are_ticket_id_text_and_label() -> None:
    ds = simulate_tickets(50, seed=1)
    assert ds.column_names == ["ticket_id", "text", "label"]
    assert ds.features["ticket_id"].dtype == "int64"
    assert ds.features["text"].dtype == "string"
    assert ds.features["label"].dtype == "string"
    assert ds["ticket_id"] == list(range(50))


def test_same_seed_same_dataset_whatever_num_proc() -> None:
    a = simulate_tickets(300, seed=4, with_dirt_column=True)
    b = simulate_tickets(300, seed=4, with_dirt_column=True, num_proc=2)
    assert a.to_dict() == b.to_dict()
    c = simulate_tickets(300, seed=5, with_dirt_column=True)
    assert c["text"] != a["text"]


def test_every_intent_occurs_and_the_rare_ones_are_a_few_percent(tickets) -> None:
    shares = {label: n / N for label, n in Counter(tickets["label"][:]).items()}
    assert set(shares) == set(INTENT_SHARES)
    for label, expected in INTENT_SHARES.items():
        assert abs(shares[label] - expected) < 4 * math.sqrt(expected / N) + 0.01, label
    assert 0.01 < shares["card_activation"] < 0.05
    assert 0.01 < shares["address_change"] < 0.06


def test_each_dirt_rate_is_roughly_the_configured_one(tickets) -> None:
    counts = Counter(tickets["dirt"][:])
    for kind, rate in TicketDirt().rates().items():
        tolerance = 4 * math.sqrt(rate * (1 - rate) / N)
        assert abs(counts[kind] / N - rate) <= tolerance, (kind, counts[kind] / N, rate)


def test_dirt_rates_follow_the_config() -> None:
    dirt = TicketDirt(**{**NO_DIRT.rates(), "foreign": 0.3, "card": 0.2})
    counts = Counter(simulate_tickets(1000, seed=2, dirt=dirt, with_dirt_column=True)["dirt"])
    assert set(counts) == {"", "foreign", "card"}
    assert 0.25 < counts["foreign"] / 1000 < 0.35
    assert 0.16 < counts["card"] / 1000 < 0.24


def test_without_dirt_every_ticket_is_clean() -> None:
    ds = simulate_tickets(500, seed=3, dirt=NO_DIRT, with_dirt_column=True)
    assert set(ds["dirt"]) == {""}
    assert all(10 <= len(t) <= 512 and t == t.strip() for t in ds["text"])


def _rows(tickets: datasets.Dataset, kind: str) -> list[str]:
    return [t for t, d in zip(tickets["text"][:], tickets["dirt"][:], strict=True) if d == kind]


def test_each_kind_of_dirt_looks_like_its_name(tickets) -> None:
    assert all(not t.strip() for t in _rows(tickets, "empty"))
    assert all(0 < len(t) < 10 for t in _rows(tickets, "too_short"))
    assert all(len(t) > 512 for t in _rows(tickets, "too_long"))
    assert all(re.search(r"[\w.+-]+@[\w-]+\.[\w.]+", t) for t in _rows(tickets, "email"))
    assert all(re.search(r"\d(?:[ ()-]*\d){7,}", t) for t in _rows(tickets, "phone"))
    assert all("Ã" in t or "â" in t for t in _rows(tickets, "mojibake"))
    for text in _rows(tickets, "card"):
        number = re.search(r"\d{4}[ -]?\d{4}[ -]?\d{4}[ -]?\d{4}", text).group(0)
        assert luhn_valid(re.sub(r"\D", "", number)), text
    sentences = [sentence for _, _, sentence in FOREIGN]
    assert all(any(s in t for s in sentences) for t in _rows(tickets, "foreign"))


def test_clean_tickets_carry_random_16_digit_references_that_are_not_cards(tickets) -> None:
    references = [
        m.group(1) for t in _rows(tickets, "") if (m := re.search(r"reference (\d{16})", t))
    ]
    assert references and not any(luhn_valid(r) for r in references)


def test_duplicates_repeat_an_earlier_ticket(tickets) -> None:
    canonical = [" ".join(t.casefold().split()) for t in tickets["text"][:]]
    first_seen: dict[str, int] = {}
    for i, text in enumerate(canonical):
        first_seen.setdefault(text, i)
    for i, dirt in enumerate(tickets["dirt"][:]):
        if dirt == "exact_duplicate":
            assert first_seen[canonical[i]] < i
        if dirt == "near_duplicate":
            assert first_seen[canonical[i]] == i  # changed: not an exact copy
            words = set(canonical[i].split())
            assert any(len(words & set(c.split())) >= 0.7 * len(words) for c in canonical[:i])


def test_a_bag_of_words_model_is_good_but_not_perfect() -> None:
    """TF-IDF + logistic regression on clean tickets: confusable intents keep it below 95%."""
    ds = simulate_tickets(3000, seed=21, dirt=NO_DIRT)
    x_train, x_test, y_train, y_test = train_test_split(
        ds["text"], ds["label"], test_size=0.25, random_state=0, stratify=ds["label"]
    )
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    model = LogisticRegression(max_iter=2000, C=4.0)
    with threadpool_limits(1):  # BLAS threads only contend on a small problem
        model.fit(vectorizer.fit_transform(x_train), y_train)
        accuracy = model.score(vectorizer.transform(x_test), y_test)
    assert 0.78 <= accuracy <= 0.93, accuracy


@pytest.mark.parametrize("name", [f.name for f in fields(TicketDirt)])
def test_a_dirt_rate_outside_0_1_names_the_field(name) -> None:
    with pytest.raises(PipelineError, match=rf"TicketDirt\.{name} = 1\.5: expected a number in"):
        TicketDirt(**{**NO_DIRT.rates(), name: 1.5})
