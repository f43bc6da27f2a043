"""The text export folder: four files that score raw text without this repository. The card states
max_length and the graph's inputs, and the documented snippet (docs/tutorials/your-own-text.md),
run as written, gives the same labels as score_texts. What every modality's folder does alike
(scores equal to the PyTorch model's in labels.json order, a missing file named, mismatched
labels refused, a scorer free of the repository): tests/test_export_folders.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.modalities.text.export_folder import (
    score_texts,
    write_text_examples,
    write_text_export,
)
from pipelines.modalities.text.simulator import NO_DIRT, simulate_tickets
from pipelines.modalities.text.tokenizer import (
    PAD,
    TokenizerConfig,
    save_tokenizer,
    train_tokenizer,
)
from pipelines.models.text import TextClassifier, export_text_onnx
from tests.scoring_snippet import EXPORT_PLACES, doc_snippet, laid_out, run_snippet
from tests.tiny_models import small_model_config

PAGE = "docs/tutorials/your-own-text.md"
MARKER = "<!-- text-scoring-snippet -->"
MAX_LEN = 48
# the snippet the docs page shows under MARKER; it finds the newest export folder itself
SNIPPET = """\
import glob, json, os, numpy as np, onnxruntime as ort
from tokenizers import Tokenizer
folder = max(glob.glob("export") + glob.glob("outputs/runs/*/export"), key=os.path.getmtime)
texts = json.load(open(f"{folder}/examples/texts.json"))["texts"]
labels = json.load(open(f"{folder}/labels.json"))["labels"]
enc = Tokenizer.from_file(f"{folder}/tokenizer.json").encode_batch(texts)
ids, mask = (np.array([getattr(e, a) for e in enc], np.int64) for a in ("ids", "attention_mask"))
model = ort.InferenceSession(f"{folder}/model.onnx", providers=["CPUExecutionProvider"])
probabilities = model.run(None, {"input_ids": ids, "attention_mask": mask})[0]
print([labels[i] for i in probabilities.argmax(axis=1)])
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return export_text_folder(tmp_path_factory.mktemp("work"))


def export_text_folder(work: Path) -> dict:
    """A tiny untrained MoE text model over a tokenizer trained on 200 tickets, exported into
    work/export. The class names are deliberately not sorted, so a folder that sorted them
    would be caught."""
    texts = simulate_tickets(200, seed=0, dirt=NO_DIRT)["text"][:]
    tokenizer = train_tokenizer(texts, TokenizerConfig(vocab_size=300, max_length=MAX_LEN))
    names = ["refund", "card_lost", "billing", "account_access", "technical_issue"]
    cfg = small_model_config("moe_transformer", hidden_dim=16, ffn_dim=24, seq_len=MAX_LEN)
    torch.manual_seed(0)
    model = TextClassifier(300, len(names), tokenizer.token_to_id(PAD), cfg).eval()
    export_text_onnx(model, work / "model.onnx", opset=17)
    save_tokenizer(tokenizer, work / "tokenizer.json")
    folder = work / "export"
    write_text_export(
        folder, work / "model.onnx", work / "tokenizer.json", names, {"model": "moe_transformer"}
    )
    return {"folder": folder, "model": model, "tokenizer": tokenizer, "names": names}


def test_the_card_states_max_length_and_the_graphs_inputs(exported) -> None:
    """The folder's files: tests/test_export_folders.py."""
    folder = exported["folder"]
    assert json.loads((folder / "labels.json").read_text()) == {"labels": exported["names"]}
    card = json.loads((folder / "model_card.json").read_text())
    assert card["model"] == "moe_transformer" and card["max_length"] == MAX_LEN
    assert set(card["inputs"]) == {"input_ids", "attention_mask"}
    assert card["outputs"]["probabilities"]["shape"] == ["batch", len(exported["names"])]


EXAMPLES = {
    "I lost my card on the train": "card_lost",
    "The website is not loading since yesterday": "technical_issue",
    "I was charged twice this month": "billing",
}


def check_snippet(snippet: str, folder: Path, where: Path) -> None:
    """The snippet, as written, from a root where each command leaves the export folder: it
    finds the folder, reads its examples and scores them as score_texts does."""
    for number, command in enumerate(EXPORT_PLACES):
        root = where / str(number)
        copy = laid_out(folder, root, command)
        write_text_examples(copy, list(EXAMPLES), list(EXAMPLES.values()))
        ns = run_snippet(snippet, root)
        assert ns["scored_folder"] == copy.resolve() and ns["texts"] == list(EXAMPLES)
        expected = score_texts(copy, ns["texts"])
        labels = [r["label"] for r in expected]
        assert ns["stdout"].strip() == str(labels)
        for row, result in zip(ns["probabilities"], expected, strict=True):
            np.testing.assert_allclose(row, list(result["probabilities"].values()), atol=1e-5)


def test_the_readme_snippet_scores_an_export_folder_as_score_texts_does(
    exported, tmp_path: Path
) -> None:
    snippet = doc_snippet(PAGE, MARKER, "text-scoring snippet (this file's SNIPPET)")
    check_snippet(snippet, exported["folder"], tmp_path)


def test_the_snippet_scores_an_export_folder_as_score_texts_does(exported, tmp_path: Path) -> None:
    check_snippet(SNIPPET, exported["folder"], tmp_path)
