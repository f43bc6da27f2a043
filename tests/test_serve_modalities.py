"""One server for every modality: a text and an image export folder (the tiny ones the export
folder tests build) served by pipelines.serve over real HTTP, the card choosing the input
adapter. Each answers what the export folder's own scorer (score_texts, score_image_files)
gives for the same inputs, batched or not; each modality's bad requests are 4xx answers naming
the field, counted by kind; and every answer carries a request id."""

from __future__ import annotations

import base64
import io
import json
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from pipelines.drift_reference import write_profile
from pipelines.errors import PipelineError
from pipelines.modalities.image.config import NO_IMAGE_DIRT, ImageSimulatorConfig
from pipelines.modalities.image.drift_features import FEATURES as IMAGE_DRIFT
from pipelines.modalities.image.drift_features import image_reference_rows
from pipelines.modalities.image.export_folder import score_image_files
from pipelines.modalities.image.simulator import simulate_images
from pipelines.modalities.text.drift_features import FEATURES as TEXT_DRIFT
from pipelines.modalities.text.drift_features import text_drift_rows
from pipelines.modalities.text.export_folder import score_texts
from pipelines.modalities.text.simulator import NO_DIRT, simulate_tickets
from pipelines.serve.config import load_serve_config
from pipelines.serve.model import load_model
from tests.serve_helpers import multiclass_table_folder, post_all, running_server
from tests.test_image_export_folder import export_image_folder
from tests.test_serve import samples
from tests.test_text_export_folder import MAX_LEN, export_text_folder

TEXTS = [
    "I lost my card on the train",
    "The website is not loading since yesterday",
    "refund please",
    "I was charged twice for the same order and nobody answers my emails, what is going on",
    "cannot log in",
    "my card was stolen, block it now",
]
# batched answers: requests wait for each other so texts of different lengths share a batch
BATCHING = ["serve.max_wait_ms=200", "serve.max_batch=64"]


@pytest.fixture(scope="module")
def text_export(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return export_text_folder(tmp_path_factory.mktemp("text"))


@pytest.fixture(scope="module")
def image_export(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return export_image_folder(tmp_path_factory.mktemp("image"))


def probabilities(predictions: list[dict], names: list[str]) -> np.ndarray:
    return np.array([[p["probabilities"][n] for n in names] for p in predictions])


def assert_same_predictions(served: list[dict], reference: list[dict], names: list[str]) -> None:
    assert [p["label"] for p in served] == [p["label"] for p in reference]
    np.testing.assert_allclose(
        probabilities(served, names), probabilities(reference, names), rtol=0, atol=2e-6
    )
    for p in served:
        assert p["probability"] == p["probabilities"][p["label"]]
        assert p["probability"] == max(p["probabilities"].values())


def test_a_text_folder_answers_what_its_own_scorer_gives_alone_and_batched(text_export) -> None:
    folder, names = text_export["folder"], text_export["names"]
    reference = score_texts(folder, TEXTS)
    with running_server(folder, *BATCHING) as srv:
        card = httpx.get(f"{srv.url}/model").json()
        alone = httpx.post(f"{srv.url}/predict", json={"texts": TEXTS}).json()
        # one text per request, sent together: one inference pads them to the longest
        answers = post_all(srv.url, [{"texts": [t]} for t in TEXTS])
    assert card["modality"] == "text" and card["labels"] == names
    assert len(alone["request_id"]) == 32 and alone["model_version"]
    assert_same_predictions(alone["predictions"], reference, names)
    assert all(a.status_code == 200 for a in answers)
    assert max(int(a.headers["x-batch-requests"]) for a in answers) > 1
    assert_same_predictions([a.json()["predictions"][0] for a in answers], reference, names)
    ids = {a.json()["request_id"] for a in answers}
    assert len(ids) == len(TEXTS) and ids == {a.headers["x-request-id"] for a in answers}


def test_a_text_longer_than_max_length_is_truncated_and_said_so_or_refused(text_export) -> None:
    folder = text_export["folder"]
    long_text = " ".join(["refund my card payment please"] * MAX_LEN)
    texts = ["short one", long_text]
    reference = score_texts(folder, texts)  # the tokenizer truncates as training did
    with running_server(folder) as srv:
        answer = httpx.post(f"{srv.url}/predict", json={"texts": texts})
    assert answer.status_code == 200
    assert answer.json()["truncated"] == [1] and answer.headers["x-truncated"] == "1"
    assert_same_predictions(answer.json()["predictions"], reference, text_export["names"])
    with running_server(folder, "serve.text.on_too_long=reject") as srv:
        refused = httpx.post(f"{srv.url}/predict", json={"texts": texts})
    assert refused.status_code == 422
    assert "'texts[1]'" in refused.json()["error"] and "max_length" in refused.json()["error"]


def _png(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def test_an_image_folder_answers_what_its_own_scorer_gives_as_json_and_upload(
    image_export,
) -> None:
    folder, names, files = image_export["folder"], image_export["names"], image_export["files"]
    reference = score_image_files(folder, files)  # resized, grey and RGBA files among them
    encoded = [base64.b64encode(Path(f).read_bytes()).decode() for f in files]
    uploads = [("file", (Path(f).name, Path(f).read_bytes(), "image/png")) for f in files[:3]]
    with running_server(folder, *BATCHING) as srv:
        card = httpx.get(f"{srv.url}/model").json()
        as_json = httpx.post(f"{srv.url}/predict", json={"images": encoded})
        uploaded = httpx.post(f"{srv.url}/predict", files=uploads)
        answers = post_all(srv.url, [{"images": [e]} for e in encoded])
    assert card["modality"] == "image" and card["labels"] == names
    assert as_json.status_code == 200, as_json.text
    assert_same_predictions(as_json.json()["predictions"], reference, names)
    assert uploaded.status_code == 200, uploaded.text
    assert_same_predictions(uploaded.json()["predictions"], reference[:3], names)
    assert max(int(a.headers["x-batch-requests"]) for a in answers) > 1
    assert_same_predictions([a.json()["predictions"][0] for a in answers], reference, names)


def _bomb() -> bytes:
    """A PNG of 6000 x 6000 pixels in a few KB: its header alone says it is too large."""
    return _png(Image.new("L", (6000, 6000)))


TEXT_BAD = [
    # (name, JSON body, status, kind, words the reason must hold)
    ("no texts key", {"text": ["a"]}, 422, "missing_field", ["'texts'"]),
    ("texts not a list", {"texts": "a"}, 422, "wrong_type", ["'texts'", "list"]),
    ("no texts", {"texts": []}, 422, "empty", ["'texts'", "empty"]),
    ("not a string", {"texts": ["ok", 3]}, 422, "wrong_type", ["'texts[1]'", "string", "int"]),
    ("empty text", {"texts": ["ok", "  "]}, 422, "empty_text", ["'texts[1]'", "empty"]),
    ("too many texts", {"texts": ["a"] * 11}, 413, "too_many_rows", ["'texts'", "11"]),
]
IMAGE_BAD = [
    ("no images key", {"image": []}, 422, "missing_field", ["'images'"]),
    ("images not a list", {"images": "x"}, 422, "wrong_type", ["'images'", "list"]),
    ("no images", {"images": []}, 422, "empty", ["'images'"]),
    ("not a string", {"images": [7]}, 422, "wrong_type", ["'images[0]'", "base64"]),
    ("not base64", {"images": ["%%%"]}, 422, "not_base64", ["'images[0]'", "base64"]),
    (
        "does not decode",
        {"images": [base64.b64encode(b"GIF89a not really").decode()]},
        422,
        "not_an_image",
        ["'images[0]'", "decodable"],
    ),
    (
        "truncated pixel data",
        {"images": [base64.b64encode(_png(Image.new("RGB", (40, 40), "red"))[:-30]).decode()]},
        422,
        "not_an_image",
        ["'images[0]'"],
    ),
    (
        "decompression bomb",
        {"images": [base64.b64encode(_bomb()).decode()]},
        413,
        "image_too_large",
        ["'images[0]'", "6000x6000", "serve.image.max_pixels"],
    ),
    (
        "wrong mode",
        {"images": [base64.b64encode(_png(Image.new("I;16", (8, 8)))).decode()]},
        422,
        "wrong_mode",
        ["'images[0]'", "I;16", "serve.image.modes"],
    ),
]


def _check_bad(url: str, table: list, endpoint_ok: dict) -> dict:
    for name, body, status, _kind, words in table:
        answer = httpx.post(f"{url}/predict", json=body)
        assert answer.status_code == status, (name, answer.text)
        reason = answer.json()["error"]
        assert "\n" not in reason and answer.json()["request_id"], name
        for word in words:
            assert word in reason, (name, reason)
    assert httpx.post(f"{url}/predict", json=endpoint_ok).status_code == 200
    return samples(httpx.get(f"{url}/metrics").text)


def test_every_bad_text_request_is_a_4xx_naming_the_field_counted_by_kind(text_export) -> None:
    with running_server(text_export["folder"], "serve.max_rows_per_request=10") as srv:
        page = _check_bad(srv.url, TEXT_BAD, {"texts": ["fine"]})
    for _, _, _, kind, _ in TEXT_BAD:
        assert page[("serve_errors_total", (("kind", kind),))] >= 1, kind
    assert page[("serve_requests_total", (("code", "422"),))] == 5


def test_every_bad_image_request_is_a_4xx_naming_the_field_counted_by_kind(image_export) -> None:
    good = base64.b64encode(Path(image_export["files"][0]).read_bytes()).decode()
    with running_server(image_export["folder"]) as srv:
        page = _check_bad(srv.url, IMAGE_BAD, {"images": [good]})
        # an upload that is not an image is named by its form field
        upload = httpx.post(
            f"{srv.url}/predict", files=[("photo", ("a.png", b"nope", "image/png"))]
        )
        assert upload.status_code == 422 and "'photo'" in upload.json()["error"]
    for _, _, _, kind, _ in IMAGE_BAD:
        assert page[("serve_errors_total", (("kind", kind),))] >= 1, kind


def test_the_card_chooses_the_adapter_and_an_unknown_modality_is_refused(text_export, tmp_path):
    cfg = load_serve_config(overrides=["serve.warmup_rounds=0"])
    assert load_model(text_export["folder"], cfg).adapter.modality == "text"
    folder = tmp_path / "export"
    shutil.copytree(text_export["folder"], folder)
    card = json.loads((folder / "model_card.json").read_text())
    (folder / "model_card.json").write_text(json.dumps({**card, "task": "audio classification"}))
    with pytest.raises(PipelineError, match="key 'task' = 'audio classification'"):
        load_model(folder, cfg)


def test_a_multiclass_table_gets_label_probability_and_distribution(tmp_path: Path) -> None:
    from pipelines.core.folder_scoring import labelled
    from pipelines.runtime import session

    features, names = multiclass_table_folder(tmp_path / "export")
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    expected = labelled(
        session(tmp_path / "export" / "model.onnx").run(None, {"features": x})[0], names
    )
    rows = [dict(zip(features, map(float, row), strict=True)) for row in x]
    with running_server(tmp_path / "export") as srv:
        answer = httpx.post(f"{srv.url}/predict", json={"rows": rows})
    assert answer.status_code == 200, answer.text
    assert "scores" not in answer.json()
    assert_same_predictions(answer.json()["predictions"], expected, names)


# --- drift: what each modality's gauges measure, against the train split the export profiled


def _psi(url: str) -> dict[str, float]:
    page = samples(httpx.get(f"{url}/metrics").text)
    return {dict(k[1])["feature"]: v for k, v in page.items() if k[0] == "serve_feature_psi"}


def _with_reference(folder: Path, work: Path, rows: np.ndarray, features: list[str]) -> Path:
    """A copy of `folder` with the reference profile the export writes (write_profile)."""
    copy = work / "with-reference"
    shutil.copytree(folder, copy)
    write_profile(copy, rows, features, "train")
    return copy


# a support team's tickets in the languages an English-trained tokenizer never saw
FOREIGN = [
    "Ich habe meine Karte im Zug verloren, bitte sperren Sie sie sofort",
    "Je n'arrive pas à me connecter depuis hier, aidez-moi s'il vous plaît",
    "Mi tarjeta fue robada, ¿pueden bloquearla ahora mismo?",
    "Die Überweisung wurde zweimal abgebucht, ich möchte eine Rückerstattung",
    "カードを紛失しました。すぐに止めてください",
    "Não consigo acessar minha conta desde ontem à noite",
]


def test_text_drift_stays_low_on_training_like_texts_and_flags_another_language(
    text_export, tmp_path: Path
) -> None:
    tokenizer = text_export["tokenizer"]
    train = simulate_tickets(600, seed=1, dirt=NO_DIRT)["text"][:]
    reference = text_drift_rows(train, tokenizer.encode_batch(train))
    folder = _with_reference(text_export["folder"], tmp_path, reference, TEXT_DRIFT)
    same = simulate_tickets(300, seed=2, dirt=NO_DIRT)["text"][:]
    foreign = [FOREIGN[i % len(FOREIGN)] for i in range(300)]
    window = ("serve.drift.window_rows=300", "serve.drift.min_rows=150")
    with running_server(folder, *window) as srv:
        for start in range(0, 300, 50):
            post_all(srv.url, [{"texts": same[start : start + 50]}])
        calm = _psi(srv.url)
        for start in range(0, 300, 50):  # replaces the whole window
            post_all(srv.url, [{"texts": foreign[start : start + 50]}])
        drifted = _psi(srv.url)
    assert set(calm) == set(TEXT_DRIFT)
    assert max(calm.values()) < 0.1, calm
    assert drifted["non_ascii_rate"] > 0.25 and drifted["oov_word_rate"] > 0.25, drifted


def _surfaces(count: int, seed: int, size: tuple[int, int], gain: float) -> list[bytes]:
    """PNG files of simulated surfaces at `size` (width, height), pixel values times `gain`."""
    sim = ImageSimulatorConfig(height=size[1], width=size[0], dirt=NO_IMAGE_DIRT)
    files = []
    for image in simulate_images(count, seed=seed, cfg=sim)["image"]:
        pixels = np.asarray(image.convert("RGB"), dtype=np.float64) * gain
        files.append(_png(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))))
    return files


def test_image_drift_stays_low_on_training_like_files_and_flags_darker_larger_ones(
    image_export, tmp_path: Path
) -> None:
    card = json.loads((image_export["folder"] / "model_card.json").read_text())
    train = _surfaces(300, seed=1, size=(48, 40), gain=1.0)
    reference = image_reference_rows(train, card["preprocessing"], limit=2000)
    folder = _with_reference(image_export["folder"], tmp_path, reference, IMAGE_DRIFT)
    same = _surfaces(150, seed=2, size=(48, 40), gain=1.0)
    other = _surfaces(150, seed=3, size=(64, 48), gain=0.5)  # a new camera, dimmer light
    encode = lambda files: [base64.b64encode(f).decode() for f in files]  # noqa: E731
    window = ("serve.drift.window_rows=150", "serve.drift.min_rows=100")
    with running_server(folder, *window) as srv:
        for start in range(0, 150, 25):
            post_all(srv.url, [{"images": encode(same[start : start + 25])}])
        calm = _psi(srv.url)
        for start in range(0, 150, 25):
            post_all(srv.url, [{"images": encode(other[start : start + 25])}])
        drifted = _psi(srv.url)
    assert set(calm) == set(IMAGE_DRIFT)
    assert max(calm.values()) < 0.1, calm
    assert min(drifted.values()) > 0.25, drifted
