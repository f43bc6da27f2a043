"""Specification of the text cleaning rules (pipelines/modalities/text/rules.py).

Each rule removes or masks what it should and leaves clean tickets alone; removed rows land in
the quarantine with the rule that removed them; duplicates are judged across splits (train is
the reference); the result does not depend on the run or on num_proc; bad inputs and bad
config fail with the source, key or column named.
"""

from __future__ import annotations

import datasets
import pytest

from pipelines.errors import PipelineError
from pipelines.modalities.text.pii import luhn_valid
from pipelines.modalities.text.rules import (
    REMOVAL_RULES,
    RULE_ORDER,
    clean_text_splits,
    validate_text_columns,
)
from pipelines.modalities.text.rules_config import (
    AbuseConfig,
    DedupConfig,
    LanguageConfig,
    LengthConfig,
    PiiConfig,
    TextCleanConfig,
)
from pipelines.modalities.text.simulator import simulate_tickets

# langdetect costs ~5 ms a text: tests about other rules switch it off.
NO_LANGUAGE = LanguageConfig(enabled=False)

CLEAN = [
    "Hi, I was charged twice for my Netflix subscription this month, please fix it.",
    "My card was stolen on the train this morning, can you block it right away?",
    "I can't log in to the app since the last update, it says my password is wrong.",
    "When will the refund for my returned jacket from Zara show up on my account?",
    "There are two payments at a shop in Madrid that I did not make, please look into it.",
    "I moved to Leeds and need to update the postal address on my account.",
]


def _ds(texts: list[str | None], labels: list[str] | None = None, start: int = 0):
    labels = labels or [("billing", "refund")[i % 2] for i in range(len(texts))]
    return datasets.Dataset.from_dict(
        {
            "ticket_id": list(range(start, start + len(texts))),
            "text": texts,
            "label": labels,
        },
        features=datasets.Features(
            {
                "ticket_id": datasets.Value("int64"),
                "text": datasets.Value("string"),
                "label": datasets.Value("string"),
            }
        ),
    )


def _cfg(**sections) -> TextCleanConfig:
    sections.setdefault("language", NO_LANGUAGE)
    return TextCleanConfig(**sections)


def _clean(texts: list[str | None], **sections):
    """Clean one 'train' split of `texts` plus the clean tickets (so it never empties)."""
    cleaned, quarantine, report = clean_text_splits(
        {"train": _ds([*texts, *CLEAN])}, _cfg(**sections)
    )
    return cleaned["train"], quarantine, report["train"]


def _rule_of(quarantine: datasets.Dataset) -> dict[int, str]:
    return dict(zip(quarantine["ticket_id"][:], quarantine["rule"][:], strict=True))


# --- order and outputs ---------------------------------------------------------------------


def test_rules_run_in_the_documented_order() -> None:
    assert RULE_ORDER == (
        "normalize",
        "pii",
        "empty",
        "length",
        "language",
        "abuse",
        "exact_duplicate",
        "near_duplicate",
    )
    assert list(REMOVAL_RULES) == [
        "empty",
        "length",
        "language",
        "abuse",
        "exact_duplicate",
        "exact_leak",
        "near_duplicate",
        "near_leak",
    ]


def test_clean_tickets_pass_every_rule_untouched() -> None:
    kept, quarantine, report = _clean([], language=LanguageConfig())
    assert kept["text"][:] == CLEAN
    assert len(quarantine) == 0
    assert report["rows_out"] == report["rows_in"] == len(CLEAN)
    assert report["normalized"] == 0
    assert set(report["removed"].values()) == {0}
    assert report["masked"] == {"email": 0, "phone": 0, "card": 0}


def test_a_rule_removes_a_row_once_the_earliest_rule_naming_it() -> None:
    # Empty and too short: "empty" comes first. Too short and abusive: "length" first.
    _, quarantine, report = _clean(["   ", "idiot!!"])
    assert _rule_of(quarantine) == {0: "empty", 1: "length"}
    assert report["removed"]["empty"] == 1 and report["removed"]["length"] == 1


def test_quarantine_keeps_the_original_columns_plus_rule_and_split() -> None:
    train = _ds(["", *CLEAN])
    test = _ds(
        ["short", CLEAN[0], "A different ticket about a missing refund from Amazon."], start=100
    )
    cleaned, quarantine, report = clean_text_splits({"train": train, "test": test}, _cfg())
    assert quarantine.column_names == ["ticket_id", "text", "label", "rule", "split"]
    assert sorted(
        zip(quarantine["split"][:], quarantine["ticket_id"][:], quarantine["rule"][:], strict=True)
    ) == [
        ("test", 100, "length"),
        ("test", 101, "exact_leak"),
        ("train", 0, "empty"),
    ]
    for name, split in report.items():
        in_quarantine = [
            r
            for r, s in zip(quarantine["rule"][:], quarantine["split"][:], strict=True)
            if s == name
        ]
        assert {r: in_quarantine.count(r) for r in set(in_quarantine)} == {
            r: n for r, n in split["removed"].items() if n
        }
        assert split["rows_out"] == len(cleaned[name]) == split["rows_in"] - len(in_quarantine)
    assert cleaned["train"].column_names == ["ticket_id", "text", "label"]


def test_empty_quarantine_still_has_the_rule_and_split_columns() -> None:
    _, quarantine, _ = _clean([])
    assert len(quarantine) == 0
    assert quarantine.column_names == ["ticket_id", "text", "label", "rule", "split"]


# --- 1. normalisation -------------------------------------------------------------------------


def test_mojibake_is_repaired_and_unicode_normalised() -> None:
    original = "The café charged me €12 – it’s the second time."
    other = "Naïve me paid €5 – a fee I can’t explain."
    texts = [
        original.encode("utf-8").decode("cp1252"),  # 'The cafÃ© charged me â‚¬12 â€“ itâ€™s ...'
        other.encode("utf-8").decode("latin-1"),
        "The ﬁnal statement shows ＄40   twice\n\nplease check",  # ligature, full-width, spaces
    ]
    kept, quarantine, report = _clean(texts)
    assert kept["text"][:3] == [
        "The café charged me €12 – it's the second time.",
        "Naïve me paid €5 – a fee I can't explain.",
        "The final statement shows $40 twice please check",
    ]
    assert len(quarantine) == 0
    assert report["normalized"] == 3


# --- 2. PII masking ---------------------------------------------------------------------------


def test_emails_phones_and_cards_are_masked_and_counted() -> None:
    texts = [
        "Please write to anna.smith@gmail.com or emma+bank@yahoo.co.uk about my refund.",
        "Call me on +44 7700 900123 or 415-555-0132 about the blocked card.",
        "My card 4111 1111 1111 1111 was charged, the old one was 5500-0000-0000-0004.",
    ]
    kept, _, report = _clean(texts)
    assert kept["text"][:3] == [
        "Please write to <EMAIL> or <EMAIL> about my refund.",
        "Call me on <PHONE> or <PHONE> about the blocked card.",
        "My card <CARD> was charged, the old one was <CARD>.",
    ]
    assert report["masked"] == {"email": 2, "phone": 2, "card": 2}


def test_numbers_that_are_not_cards_or_phones_stay() -> None:
    assert not luhn_valid("4111111111111112")
    texts = [
        "Transfer failed with reference 4111111111111112, please check it.",
        "Paid $1,249.00 on 14/03/2025 at 10.30, order 48213377, error E-4821.",
        "Direct debit 2024-03-15 failed, the card ending 0772 was charged 12.50 USD.",
    ]
    kept, _, report = _clean(texts)
    assert kept["text"][:3] == texts
    assert report["masked"] == {"email": 0, "phone": 0, "card": 0}


def test_masking_can_be_limited_to_some_kinds_and_tokens_renamed() -> None:
    text = "Mail tom_b@outlook.com, card 4111 1111 1111 1111, phone 415-555-0132 today."
    kept, _, report = _clean([text], pii=PiiConfig(kinds=["card"], card_token="[CARD]"))
    assert kept["text"][0] == "Mail tom_b@outlook.com, card [CARD], phone 415-555-0132 today."
    assert report["masked"] == {"card": 1}


def test_quarantined_rows_are_already_masked() -> None:
    abusive = "You stupid idiots, call me on 415-555-0132 or at tom_b@outlook.com now."
    _, quarantine, _ = _clean([abusive])
    assert quarantine["text"][:] == ["You stupid idiots, call me on <PHONE> or at <EMAIL> now."]


# --- 3-4. empty and length --------------------------------------------------------------------


def test_empty_whitespace_only_and_missing_texts_are_removed() -> None:
    _, quarantine, report = _clean(["", "   ", "\n\t ", None])
    assert _rule_of(quarantine) == dict.fromkeys(range(4), "empty")
    assert report["removed"]["empty"] == 4


def test_length_bounds_are_inclusive_and_counted_in_characters() -> None:
    texts = ["x" * 9, "y" * 10, "z" * 512, "w" * 513, "é" * 20]
    kept, quarantine, _ = _clean(texts, dedup=DedupConfig(exact=False, near=False))
    assert _rule_of(quarantine) == {0: "length", 3: "length"}
    assert kept["text"][:3] == ["y" * 10, "z" * 512, "é" * 20]


def test_length_bounds_come_from_config() -> None:
    _, quarantine, _ = _clean(["A short but real ticket."], length=LengthConfig(min_chars=30))
    assert _rule_of(quarantine) == {0: "length"}


# --- 5. language ------------------------------------------------------------------------------

FOREIGN = [
    "Ich habe gestern meine Karte verloren, bitte sperren Sie sie sofort.",
    "J'ai perdu ma carte bancaire dans le métro, pouvez-vous la bloquer s'il vous plaît ?",
    "Devolví el pedido hace dos semanas y todavía no he recibido el reembolso.",
    "Ho perso la mia carta di credito ieri sera, potete bloccarla per favore?",
]
SHORT_ENGLISH = ["Card blocked??", "refund please", "App crashes", "PIN locked, help"]


def test_other_languages_are_removed_and_short_english_lines_kept() -> None:
    kept, quarantine, _ = _clean([*FOREIGN, *SHORT_ENGLISH], language=LanguageConfig())
    assert _rule_of(quarantine) == dict.fromkeys(range(4), "language")
    assert kept["text"][:4] == SHORT_ENGLISH


def test_language_allow_list_comes_from_config() -> None:
    _, quarantine, _ = _clean(FOREIGN, language=LanguageConfig(allowed=["en", "de"]))
    assert _rule_of(quarantine) == {1: "language", 2: "language", 3: "language"}


# --- 6. abuse ---------------------------------------------------------------------------------


def test_abusive_tickets_are_removed_but_one_swear_word_in_a_complaint_stays() -> None:
    complaint = "This stupid app has wasted my whole evening and nobody from support answers."
    texts = [
        "My transfer failed again. You are all useless, stupid idiots.",
        "Stupid app!!",  # one word but a third of the words
        complaint,
    ]
    kept, quarantine, report = _clean(texts)
    assert _rule_of(quarantine) == {0: "abuse", 1: "abuse"}
    assert kept["text"][0] == complaint
    assert report["removed"]["abuse"] == 2


def test_abuse_threshold_and_word_list_come_from_config() -> None:
    complaint = "This stupid app has wasted my whole evening and nobody from support answers."
    _, quarantine, _ = _clean([complaint], abuse=AbuseConfig(min_count=1))
    assert _rule_of(quarantine) == {0: "abuse"}
    rude = "Your agents are numpties and total muppets, fix my card today."
    _, quarantine, _ = _clean([rude], abuse=AbuseConfig(extra_words=["numpties", "Muppets"]))
    assert _rule_of(quarantine) == {0: "abuse"}


# --- 7-8. duplicates and leaks ----------------------------------------------------------------

TICKET = (
    "Hello, I returned the headphones to Currys last week but the refund of 89.99 dollars "
    "has still not reached my account. Kind regards, Anna"
)
NEAR = (
    "Hello, I returned the headphones to Currys last week but the refund of 89.99 dollars "
    "has still not reached my account again. Kind regards, Anna"
)


def test_exact_duplicates_ignore_case_and_whitespace_and_keep_the_first() -> None:
    texts = [TICKET, TICKET.upper(), "  " + TICKET.replace(" ", "   ") + "\n", TICKET]
    kept, quarantine, report = _clean(texts, dedup=DedupConfig(near=False))
    assert kept["ticket_id"][0] == 0
    assert _rule_of(quarantine) == {
        1: "exact_duplicate",
        2: "exact_duplicate",
        3: "exact_duplicate",
    }
    assert report["removed"]["exact_duplicate"] == 3


def test_near_duplicates_are_removed_and_distinct_tickets_of_one_intent_kept() -> None:
    other = (
        "Hello, I returned a coffee machine to Argos on March 3 but the refund of 240.00 "
        "dollars is still pending. Thanks, Tom"
    )
    kept, quarantine, report = _clean([TICKET, NEAR, other])
    assert _rule_of(quarantine) == {1: "near_duplicate"}
    assert kept["text"][:2] == [TICKET, other]
    assert report["removed"]["near_duplicate"] == 1


def test_near_duplicate_threshold_comes_from_config() -> None:
    _, quarantine, _ = _clean([TICKET, NEAR], dedup=DedupConfig(threshold=0.99))
    assert len(quarantine) == 0


def test_a_test_row_repeating_a_train_row_is_a_leak_removed_from_test_not_train() -> None:
    train = _ds([TICKET, *CLEAN])
    val = _ds(
        [TICKET.lower(), "My savings account interest was not paid this month, why?"], start=100
    )
    test = _ds([NEAR, "The app shows error 502 every time I open the payments tab."], start=200)
    # train is the reference even when it is not the first split given
    cleaned, quarantine, report = clean_text_splits(
        {"test": test, "val": val, "train": train}, _cfg()
    )
    assert cleaned["train"]["text"] == [TICKET, *CLEAN]
    where = zip(quarantine["split"][:], quarantine["rule"][:], strict=True)
    assert dict(zip(quarantine["ticket_id"][:], where, strict=True)) == {
        100: ("val", "exact_leak"),
        200: ("test", "near_leak"),
    }
    assert report["val"]["removed"]["exact_leak"] == 1
    assert report["test"]["removed"]["near_leak"] == 1
    assert report["train"]["rows_out"] == len(train)


def test_a_duplicate_within_val_is_a_duplicate_not_a_leak() -> None:
    val = _ds([TICKET, TICKET, NEAR], start=100)
    _, quarantine, _ = clean_text_splits({"train": _ds(CLEAN), "val": val}, _cfg())
    assert _rule_of(quarantine) == {101: "exact_duplicate", 102: "near_duplicate"}


# --- whole runs -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def simulated() -> dict[str, datasets.Dataset]:
    tickets = simulate_tickets(400, seed=5, with_dirt_column=True)
    return {"train": tickets.select(range(300)), "test": tickets.select(range(300, 400))}


@pytest.fixture(scope="module")
def simulated_clean(simulated):
    return clean_text_splits(simulated, TextCleanConfig())


def test_every_kind_of_simulated_dirt_is_caught_by_its_rule(simulated, simulated_clean) -> None:
    cleaned, quarantine, _ = simulated_clean
    expected = {
        "empty": {"empty"},
        "too_short": {"length"},
        "too_long": {"length"},
        "foreign": {"language"},
        "abusive": {"abuse"},
        "exact_duplicate": {"exact_duplicate", "exact_leak"},
        "near_duplicate": {"near_duplicate", "near_leak"},
    }
    for dirt, rule in zip(quarantine["dirt"][:], quarantine["rule"][:], strict=True):
        if dirt:
            assert rule in expected[dirt], (dirt, rule)
    removed_dirt = [d for d in quarantine["dirt"][:] if d]
    injected = [d for split in simulated.values() for d in split["dirt"][:] if d in expected]
    assert len(removed_dirt) >= 0.95 * len(injected)
    # PII and mojibake rows stay, masked and repaired
    kept = datasets.concatenate_datasets(list(cleaned.values()))
    for text, dirt in zip(kept["text"][:], kept["dirt"][:], strict=True):
        if dirt in ("email", "phone", "card"):
            assert f"<{dirt.upper()}>" in text, text
        if dirt == "mojibake":
            assert "Ã" not in text and "â€" not in text, text


def test_clean_simulated_tickets_are_kept(simulated, simulated_clean) -> None:
    _, quarantine, _ = simulated_clean
    clean_rows = sum(1 for split in simulated.values() for d in split["dirt"][:] if d == "")
    wrongly_removed = sum(1 for d in quarantine["dirt"][:] if d == "")
    assert wrongly_removed <= 0.02 * clean_rows


def test_same_input_same_output_with_one_process_or_two() -> None:
    tickets = simulate_tickets(120, seed=9, with_dirt_column=True)
    splits = {"train": tickets.select(range(90)), "test": tickets.select(range(90, 120))}
    one = clean_text_splits(splits, TextCleanConfig(), num_proc=None)
    two = clean_text_splits(splits, TextCleanConfig(), num_proc=2)
    assert sum(one[2]["train"]["removed"].values()) > 0  # the rules did something
    assert two[2] == one[2]
    assert two[1].to_dict() == one[1].to_dict()
    assert {k: v.to_dict() for k, v in two[0].items()} == {
        k: v.to_dict() for k, v in one[0].items()
    }


def test_a_split_emptied_by_the_rules_fails_naming_the_split_and_rule() -> None:
    train = _ds(["too short", "tiny", *CLEAN[:1]])
    with pytest.raises(PipelineError) as err:
        clean_text_splits({"train": train}, _cfg(length=LengthConfig(min_chars=200)))
    assert str(err.value) == (
        "data.text.clean: every row of split 'train' was removed (length removed 3 of 3); "
        "loosen data.text.clean.length"
    )


# --- bad input ---------------------------------------------------------------------------------


def test_missing_text_column_names_the_source_and_column() -> None:
    ds = datasets.Dataset.from_dict({"body": ["hello there"], "label": ["a"]})
    with pytest.raises(PipelineError, match=r"data/tickets.csv: text column 'text' is missing"):
        validate_text_columns(ds, "text", "label", "data/tickets.csv")


def test_non_string_texts_are_rejected() -> None:
    ds = datasets.Dataset.from_dict({"text": [1, 2, 3], "label": ["a", "b", "a"]})
    with pytest.raises(PipelineError, match=r"tickets.parquet: text column 'text' holds int64"):
        validate_text_columns(ds, "text", "label", "tickets.parquet")


@pytest.mark.parametrize("texts", [["", "  ", "\n"], [None, None, None]])
def test_an_entirely_empty_text_column_is_rejected(texts) -> None:
    ds = datasets.Dataset.from_dict({"text": texts, "label": ["a", "b", "a"]})
    with pytest.raises(PipelineError, match=r"in.csv: text column 'text' is entirely empty"):
        validate_text_columns(ds, "text", "label", "in.csv")


def test_a_label_with_one_class_is_rejected() -> None:
    ds = datasets.Dataset.from_dict({"text": ["a ticket", "another"], "label": ["x", "x"]})
    with pytest.raises(PipelineError, match=r"in.csv: label column 'label' has 1 class"):
        validate_text_columns(ds, "text", "label", "in.csv")
    with pytest.raises(PipelineError, match=r"in.csv: label column 'intent' is missing"):
        validate_text_columns(ds, "text", "intent", "in.csv")


def test_clean_validates_each_split_and_names_it() -> None:
    one_class = _ds(CLEAN, labels=["billing"] * len(CLEAN))
    with pytest.raises(PipelineError, match=r"split 'train': label column 'label' has 1 class"):
        clean_text_splits({"train": one_class}, _cfg())
    # a small evaluation split may hold a single class
    test = _ds([TICKET, "Where is the refund for the concert that was cancelled?"], ["refund"] * 2)
    clean_text_splits({"train": _ds(CLEAN), "test": test}, _cfg())
    reserved = _ds(CLEAN).add_column("rule", ["x"] * len(CLEAN))
    with pytest.raises(PipelineError, match=r"split 'train': column 'rule' is reserved"):
        clean_text_splits({"train": reserved}, _cfg())


# --- config ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: LengthConfig(min_chars=-1),
            "data.text.clean.length.min_chars = -1: expected an integer >= 0",
        ),
        (
            lambda: LengthConfig(min_chars=600),
            "data.text.clean.length.min_chars = 600 > data.text.clean.length.max_chars = 512",
        ),
        (
            lambda: DedupConfig(threshold=1.5),
            "data.text.clean.dedup.threshold = 1.5: expected a number in (0, 1]",
        ),
        (
            lambda: DedupConfig(shingle_size=0),
            "data.text.clean.dedup.shingle_size = 0: expected an integer >= 1",
        ),
        (
            lambda: LanguageConfig(allowed=[]),
            "data.text.clean.language.allowed = []: expected a non-empty list",
        ),
        (
            lambda: LanguageConfig(min_confidence=0),
            "data.text.clean.language.min_confidence = 0: expected a number in (0, 1]",
        ),
        (
            lambda: AbuseConfig(min_count=0),
            "data.text.clean.abuse.min_count = 0: expected an integer >= 1",
        ),
        (
            lambda: PiiConfig(kinds=["email", "iban"]),
            "data.text.clean.pii.kinds = ['email', 'iban']",
        ),
        (
            lambda: TextCleanConfig(length={"min_char": 5}),
            "data.text.clean.length.min_char: unknown key; expected one of enabled, min_chars, "
            "max_chars",
        ),
        (lambda: TextCleanConfig(dedup={"num_perm": 1}), "data.text.clean.dedup.num_perm = 1"),
    ],
)
def test_bad_config_names_the_key_and_what_was_expected(build, message) -> None:
    with pytest.raises(PipelineError) as err:
        build()
    assert str(err.value).startswith(message)


def test_config_sections_may_be_plain_mappings() -> None:
    cfg = TextCleanConfig(length={"min_chars": 5, "max_chars": 100}, language={"enabled": False})
    assert cfg.length == LengthConfig(min_chars=5, max_chars=100)
    assert cfg.language.enabled is False
