"""Label feedback and online quality, and the resource metrics, over real HTTP: answers
joined to the labels POST /feedback brings (bounded by count and age), the online figures per
model version equal to what the evaluate stage's own code (torchmetrics) gives on the same
pairs, the
card's test figures beside them for the alert rule, bad feedback refused naming the field; and
/metrics carrying the process's CPU, memory, descriptors and threads."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from pipelines.evaluation import ranking_metrics
from pipelines.multiclass import multiclass_metrics
from tests.serve_helpers import multiclass_table_folder, running_server
from tests.test_serve import samples

CARD = {"accuracy": 0.97, "macro_f1": 0.96}
ONLINE = ["serve.feedback.min_labels=20", "serve.feedback.window=500"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("feedback")
    multiclass_table_folder(root / "multi", version="multi", test_metrics=CARD)
    multiclass_table_folder(
        root / "binary", version="binary", binary=True, test_metrics={"auroc": 0.9, "auprc": 0.5}
    )
    return {"multi": root / "multi", "binary": root / "binary"}


def rows(n: int, seed: int = 0) -> list[dict[str, float]]:
    x = np.random.default_rng(seed).normal(size=(n, 3))
    return [{"age": a, "amount": b, "hour": c} for a, b, c in x.tolist()]


def quality(page: dict, version: str, metric: str) -> float:
    return page[("serve_online_quality", (("metric", metric), ("version", version)))]


def test_multiclass_feedback_gives_online_accuracy_and_macro_f1_per_version(folders) -> None:
    rng = np.random.default_rng(1)
    classes = ["low", "medium", "high", "fraud"]
    predicted, truth, probabilities = [], [], []
    with running_server(folders["multi"], *ONLINE) as srv:
        for row in rows(120):
            answer = httpx.post(f"{srv.url}/predict", json={"rows": [row]}).json()
            label = answer["predictions"][0]["label"]
            probabilities.append([answer["predictions"][0]["probabilities"][c] for c in classes])
            true = label if rng.random() < 0.7 else str(rng.choice(classes))
            joined = httpx.post(
                f"{srv.url}/feedback", json={"request_id": answer["request_id"], "label": true}
            )
            assert joined.status_code == 200 and joined.json()["model_version"] == "multi"
            predicted.append(label)
            truth.append(true)
        page = samples(httpx.get(f"{srv.url}/metrics").text)
    expected = multiclass_metrics(
        np.array([classes.index(t) for t in truth]), np.array(probabilities), classes
    )
    assert 0.5 < expected["accuracy"] < 0.95  # the labels disagree with a share of answers
    assert quality(page, "multi", "accuracy") == pytest.approx(expected["accuracy"], abs=1e-6)
    assert quality(page, "multi", "macro_f1") == pytest.approx(expected["macro_f1"], abs=1e-6)
    assert page[("serve_online_labels", (("version", "multi"),))] == 120
    assert page[("serve_card_quality", (("metric", "accuracy"), ("version", "multi")))] == 0.97
    assert page[("serve_feedback_total", (("result", "joined"),))] == 120


def test_binary_feedback_gives_online_auroc_and_auprc_and_takes_label_names(folders) -> None:
    scores, labels = [], []
    with running_server(folders["binary"], *ONLINE) as srv:
        answer = httpx.post(f"{srv.url}/predict", json={"rows": rows(60)}).json()
        scores = answer["scores"]
        # the truth: mostly agreeing with the score, in the card's label names and as 0/1
        labels = [int(s > 0.5) if i % 5 else int(s <= 0.5) for i, s in enumerate(scores)]
        named = [["legit", "fraud"][y] if i % 2 else y for i, y in enumerate(labels)]
        joined = httpx.post(
            f"{srv.url}/feedback", json={"request_id": answer["request_id"], "labels": named}
        )
        page = samples(httpx.get(f"{srv.url}/metrics").text)
    assert joined.status_code == 200 and joined.json()["rows"] == 60
    expected = ranking_metrics(np.array(labels), np.array(scores, dtype=np.float32))
    assert 0.5 < expected["auroc"] < 1  # a fifth of the labels disagree with the scores
    assert quality(page, "binary", "auroc") == pytest.approx(expected["auroc"], abs=1e-5)
    assert quality(page, "binary", "auprc") == pytest.approx(expected["auprc"], abs=1e-5)


def test_bad_or_late_feedback_is_refused_naming_the_field_and_memory_stays_bounded(
    folders,
) -> None:
    with running_server(
        folders["multi"], "serve.feedback.max_pending=5", "serve.feedback.retention_s=1"
    ) as srv:
        ids = [
            httpx.post(f"{srv.url}/predict", json={"rows": [r]}).json()["request_id"]
            for r in rows(7)
        ]
        two = httpx.post(f"{srv.url}/predict", json={"rows": rows(2)}).json()["request_id"]

        def send(body: dict) -> httpx.Response:
            return httpx.post(f"{srv.url}/feedback", json=body)

        evicted = send({"request_id": ids[0], "label": "low"})  # 8 answered, 5 kept
        unknown = send({"request_id": "nope", "label": "low"})
        no_id = send({"label": "low"})
        wrong = send({"request_id": ids[-1], "label": "purple"})
        per_row = send({"request_id": two, "label": "low"})
        count = send({"request_id": two, "labels": ["low"]})
        ok = send({"request_id": ids[-1], "label": "high"})
        again = send({"request_id": ids[-1], "label": "high"})
        time.sleep(1.2)
        late = send({"request_id": two, "labels": ["low", "high"]})
        page = samples(httpx.get(f"{srv.url}/metrics").text)
    assert evicted.status_code == 404 and "'request_id'" in evicted.json()["error"]
    assert unknown.status_code == 404
    assert no_id.status_code == 422 and "'request_id'" in no_id.json()["error"]
    assert wrong.status_code == 422 and "'label'" in wrong.json()["error"]
    assert "purple" in wrong.json()["error"]
    assert per_row.status_code == 422 and "send 'labels'" in per_row.json()["error"]
    assert count.status_code == 422 and "2 labels" in count.json()["error"]
    assert ok.status_code == 200 and again.status_code == 404
    assert late.status_code == 404 and "retention_s" in late.json()["error"]
    assert page[("serve_feedback_total", (("result", "unknown_request"),))] == 4
    assert page[("serve_feedback_total", (("result", "wrong_label"),))] == 1
    assert page[("serve_feedback_pending", ())] == 0


def test_metrics_carry_process_cpu_memory_descriptors_and_threads(folders) -> None:
    with running_server(folders["multi"]) as srv:
        httpx.post(f"{srv.url}/predict", json={"rows": rows(3)})
        page = samples(httpx.get(f"{srv.url}/metrics").text)
    assert page[("process_cpu_seconds_total", ())] > 0
    assert page[("process_resident_memory_bytes", ())] > 50e6  # numpy and ORT are loaded
    assert page[("process_open_fds", ())] >= 3
    # the event loop, the scoring thread and uvicorn's server thread at least
    assert page[("serve_process_threads", ())] >= 3
    assert page[("serve_cpu_cores", ())] >= 1
    assert page[("serve_memory_limit_bytes", ())] > page[("process_resident_memory_bytes", ())]
    gpu = [key for key in page if key[0].startswith("serve_gpu_")]
    if not srv.state.metrics.gpu:  # no NVML or no GPU here: no GPU series at all
        assert gpu == []
    else:
        assert ("serve_gpu_memory_total_bytes", (("gpu", "0"),)) in page
