"""The model server against a real export folder built by the stages on small data, over
real HTTP: scoring, dynamic batching, bad requests, metrics, drift and hot reload."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipelines.drift_reference import REFERENCE_FILE
from pipelines.runtime import session
from tests.serve_helpers import (
    BEARER,
    Export,
    admin_overrides,
    as_rows,
    build_export,
    running_server,
)
from tests.small import REPO, env


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    return build_export(tmp_path_factory.mktemp("serve"))


def direct_scores(folder: Path, x: np.ndarray) -> np.ndarray:
    s = session(folder / "model.onnx", threads=1)
    return s.run(None, {s.get_inputs()[0].name: x})[0].reshape(-1)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics page keyed by (name, sorted labels)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_export_ships_a_reference_profile_of_the_train_split(export: Export) -> None:
    profile = json.loads((export.folder / REFERENCE_FILE).read_text())
    assert list(profile["features"]) == export.features
    assert profile["rows"] == len(export.train)
    for column in profile["features"].values():
        assert sum(column["counts"]) == len(export.train)
        assert len(column["counts"]) == len(column["edges"]) + 1
    # a 0/1 flag gets one bin per value, not a single collapsed quantile bin
    assert len(profile["features"]["tx_during_weekend"]["counts"]) == 2


def test_predict_scores_rows_like_the_onnx_session_and_names_the_version(export: Export) -> None:
    x = export.test[:5]
    with running_server(export.folder) as srv:
        answer = httpx.post(f"{srv.url}/predict", json={"rows": as_rows(x, export.features)})
        card = httpx.get(f"{srv.url}/model").json()
        assert httpx.get(f"{srv.url}/health").json()["status"] == "alive"
        assert httpx.get(f"{srv.url}/ready").status_code == 200
    assert answer.status_code == 200
    body = answer.json()
    np.testing.assert_allclose(body["scores"], direct_scores(export.folder, x), atol=1e-6)
    assert body["model_version"] == card["model_version"]
    # the card's version when the export stage wrote one, else name, variant and model hash
    assert card["model_version"] == card["card"].get("version", card["model_version"])
    # the variant export.select shipped (since `rule: best`, possibly a baseline's graph)
    assert "moe_mlp" in card["model_version"] and card["card"]["variant"] in card["model_version"]
    assert card["features"] == export.features and card["drift_reference"] is True


async def _concurrent(url: str, bodies: list[dict]) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=30) as client:
        return await asyncio.gather(*(client.post(f"{url}/predict", json=b) for b in bodies))


def test_requests_arriving_together_share_one_inference_and_get_their_own_scores(
    export: Export,
) -> None:
    chunks = [export.test[3 * i : 3 * i + 3] for i in range(8)]
    bodies = [{"rows": as_rows(c, export.features)} for c in chunks]
    # a long wait so the 8 requests, sent at once, certainly meet in the queue
    with running_server(export.folder, "serve.max_batch=64", "serve.max_wait_ms=1000") as srv:
        answers = asyncio.run(_concurrent(srv.url, bodies))
        page = samples(httpx.get(f"{srv.url}/metrics").text)
    assert all(a.status_code == 200 for a in answers)
    assert len({a.headers["x-batch-id"] for a in answers}) == 1
    assert {a.headers["x-batch-rows"] for a in answers} == {"24"}
    assert {a.headers["x-batch-requests"] for a in answers} == {"8"}
    for chunk, answer in zip(chunks, answers, strict=True):
        np.testing.assert_allclose(
            answer.json()["scores"], direct_scores(export.folder, chunk), atol=1e-6
        )
    assert page[("serve_batch_rows_count", ())] == 1
    assert page[("serve_batch_rows_sum", ())] == 24
    assert page[("serve_rows_scored_total", ())] == 24


def test_a_batch_never_exceeds_max_batch_rows(export: Export) -> None:
    bodies = [{"rows": as_rows(export.test[3 * i : 3 * i + 3], export.features)} for i in range(3)]
    with running_server(export.folder, "serve.max_batch=8", "serve.max_wait_ms=1000") as srv:
        answers = asyncio.run(_concurrent(srv.url, bodies))
    assert all(a.status_code == 200 for a in answers)
    batches = {a.headers["x-batch-id"]: int(a.headers["x-batch-rows"]) for a in answers}
    assert sorted(batches.values()) == [3, 6]


def test_with_batching_off_each_request_is_its_own_inference(export: Export) -> None:
    bodies = [{"rows": as_rows(export.test[i : i + 2], export.features)} for i in range(6)]
    with running_server(export.folder, "serve.batching=false", "serve.max_wait_ms=1000") as srv:
        answers = asyncio.run(_concurrent(srv.url, bodies))
    assert len({a.headers["x-batch-id"] for a in answers}) == 6
    assert {a.headers["x-batch-rows"] for a in answers} == {"2"}


def _good_row(export: Export) -> dict[str, float]:
    return as_rows(export.test[:1], export.features)[0]


BAD_REQUESTS = [
    # (name, body builder (row -> content bytes), status, kind, words the reason must hold)
    ("not json", lambda r: b"rows: 1", 400, "not_json", ["not valid JSON"]),
    ("empty body", lambda r: b"", 400, "not_json", ["empty body"]),
    ("binary garbage", lambda r: bytes(range(256)) * 8, 400, "not_json", ["body is not"]),
    # deep enough to exhaust the JSON parser's recursion: a 400, not a dead worker
    ("nested 4000 deep", lambda r: b"[" * 4000 + b"]" * 4000, 400, "not_json", ["JSON"]),
    ("no rows key", lambda r: json.dumps({"row": [r]}).encode(), 422, "missing_field", ["'rows'"]),
    ("rows not a list", lambda r: json.dumps({"rows": r}).encode(), 422, "wrong_type", ["'rows'"]),
    ("no rows", lambda r: b'{"rows": []}', 422, "empty", ["'rows'", "empty"]),
    ("row not an object", lambda r: b'{"rows": [[1, 2]]}', 422, "wrong_type", ["'rows[0]'"]),
    (
        "missing feature",
        lambda r: json.dumps({"rows": [r, {k: r[k] for k in r if k != "tx_hour"}]}).encode(),
        422,
        "missing_feature",
        ["'rows[1].tx_hour'", "missing"],
    ),
    (
        "string value",
        lambda r: json.dumps({"rows": [{**r, "tx_amount": "12.5"}]}).encode(),
        422,
        "wrong_type",
        ["'rows[0].tx_amount'", "expected a number", "str"],
    ),
    (
        "boolean value",
        lambda r: json.dumps({"rows": [{**r, "tx_during_night": True}]}).encode(),
        422,
        "wrong_type",
        ["'rows[0].tx_during_night'", "bool"],
    ),
    (
        "null value",
        lambda r: json.dumps({"rows": [{**r, "tx_hour": None}]}).encode(),
        422,
        "wrong_type",
        ["'rows[0].tx_hour'", "NoneType"],
    ),
    (
        "NaN",
        lambda r: json.dumps({"rows": [r, {**r, "tx_amount": float("nan")}]}).encode(),
        400,
        "not_json",
        ["NaN"],
    ),
    (
        "Infinity",
        lambda r: json.dumps({"rows": [{**r, "tx_amount": float("inf")}]}).encode(),
        400,
        "not_json",
        ["Infinity"],
    ),
    (
        "float32 overflow",
        lambda r: json.dumps({"rows": [r, {**r, "tx_amount": 1e39}]}).encode(),
        422,
        "non_finite",
        ["'rows[1].tx_amount'", "finite"],
    ),
    (
        "huge integer",
        lambda r: json.dumps({"rows": [{**r, "tx_amount": 10**400}]}).encode(),
        422,
        "non_finite",
        ["'rows[0].tx_amount'", "finite", "1" + "0" * 39 + " is"],  # 40 digits, not 401
    ),
    (
        "too many rows",
        lambda r: json.dumps({"rows": [r] * 11}).encode(),
        413,
        "too_many_rows",
        ["'rows'", "11", "serve.max_rows_per_request"],
    ),
    (
        "body too large",
        lambda r: json.dumps({"rows": [r], "pad": "x" * 9000}).encode(),
        413,
        "body_too_large",
        ["body", "serve.max_body_bytes"],
    ),
]


def test_every_bad_request_is_a_4xx_naming_the_field_and_the_server_carries_on(
    export: Export,
) -> None:
    row = _good_row(export)

    def chunked(data: bytes):  # no Content-Length: the size limit must hold while reading
        yield data[:100]
        yield data[100:]

    big = json.dumps({"rows": [row], "pad": "x" * 9000}).encode()
    with running_server(
        export.folder, "serve.max_rows_per_request=10", "serve.max_body_bytes=8192"
    ) as srv:
        for name, build, status, _kind, words in BAD_REQUESTS:
            answer = httpx.post(
                f"{srv.url}/predict", content=build(row),
                headers={"content-type": "application/json"},
            )  # fmt: skip
            reason = answer.json()["error"]
            assert answer.status_code == status, (name, answer.text)
            assert "\n" not in reason, name
            for word in words:
                assert word in reason, (name, reason)
        streamed = httpx.post(f"{srv.url}/predict", content=chunked(big))
        assert streamed.status_code == 413 and "serve.max_body_bytes" in streamed.json()["error"]
        assert httpx.get(f"{srv.url}/predict").status_code == 405
        good = httpx.post(f"{srv.url}/predict", json={"rows": [row]})
        assert good.status_code == 200
        page = samples(httpx.get(f"{srv.url}/metrics").text)
    for _, _, _, kind, _ in BAD_REQUESTS:
        assert page[("serve_errors_total", (("kind", kind),))] >= 1, kind
    assert page[("serve_errors_total", (("kind", "body_too_large"),))] == 2
    assert page[("serve_requests_total", (("code", "200"),))] == 1
    assert page[("serve_requests_total", (("code", "422"),))] == 10


class _Broken:
    """Stands in for the ORT session: fails like a model given input it cannot handle."""

    def run(self, *_: object) -> list[np.ndarray]:
        raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : node Gemm_3 failed")


def test_a_scoring_failure_is_a_counted_5xx_and_the_server_recovers(export: Export) -> None:
    body = {"rows": [_good_row(export)]}
    with running_server(export.folder) as srv:
        model = srv.state.holder.current
        assert model is not None
        real, model.session = model.session, _Broken()
        failed = httpx.post(f"{srv.url}/predict", json=body)
        model.session = real
        recovered = httpx.post(f"{srv.url}/predict", json=body)
        page = samples(httpx.get(f"{srv.url}/metrics").text)
    assert failed.status_code == 500
    assert failed.json()["error"].startswith("scoring failed: [ONNXRuntimeError]")
    assert recovered.status_code == 200
    assert page[("serve_errors_total", (("kind", "scoring"),))] == 1
    assert page[("serve_requests_total", (("code", "500"),))] == 1


def test_metrics_expose_latency_batches_queue_scores_and_the_model(export: Export) -> None:
    x = export.test[:10]
    with running_server(export.folder) as srv:
        for i in range(0, 10, 2):
            httpx.post(f"{srv.url}/predict", json={"rows": as_rows(x[i : i + 2], export.features)})
        text = httpx.get(f"{srv.url}/metrics").text
        version = srv.state.holder.current.version  # type: ignore[union-attr]
    page = samples(text)
    assert page[("serve_request_latency_seconds_count", ())] == 5
    assert page[("serve_batch_latency_seconds_count", ())] == 5
    assert page[("serve_batch_rows_sum", ())] == 10
    assert page[("serve_prediction_score_count", ())] == 10
    assert page[("serve_rows_scored_total", ())] == 10
    assert page[("serve_queue_rows", ())] == 0
    assert page[("serve_ready", ())] == 1
    info = [k for k in page if k[0] == "serve_model_info"]
    assert info and ("version", version) in info[0][1]
    # fewer rows than serve.drift.min_rows: the window is counted, no PSI is claimed yet
    assert page[("serve_drift_window_rows", ())] == 10
    assert not any(k[0] == "serve_feature_psi" for k in page)


def _psi_by_feature(url: str) -> dict[str, float]:
    page = samples(httpx.get(f"{url}/metrics").text)
    return {dict(k[1])["feature"]: v for k, v in page.items() if k[0] == "serve_feature_psi"}


def test_drift_psi_stays_low_on_training_like_rows_and_flags_a_shifted_feature(
    export: Export,
) -> None:
    rng = np.random.default_rng(0)
    same = export.train[rng.choice(len(export.train), 600, replace=False)]
    shifted = export.train[rng.choice(len(export.train), 600, replace=False)].copy()
    shifted[:, export.features.index("tx_amount")] *= 5
    overrides = ("serve.drift.window_rows=600", "serve.drift.min_rows=300")
    with running_server(export.folder, *overrides) as srv:

        def send(x: np.ndarray) -> None:
            for i in range(0, len(x), 100):
                rows = as_rows(x[i : i + 100], export.features)
                assert httpx.post(f"{srv.url}/predict", json={"rows": rows}).status_code == 200

        send(same)
        calm = _psi_by_feature(srv.url)
        send(shifted)  # replaces the whole window
        drifted = _psi_by_feature(srv.url)
        worst = samples(httpx.get(f"{srv.url}/metrics").text)[("serve_drift_max_psi", ())]
    assert set(calm) == set(export.features)
    assert max(calm.values()) < 0.1, calm
    assert drifted["tx_amount"] > 0.25
    assert worst == drifted["tx_amount"]
    others = {f: v for f, v in drifted.items() if f != "tx_amount"}
    assert max(others.values()) < 0.1, others


async def _traffic_across_reload(
    url: str, bodies: list[dict], target: Path, clients: int = 16
) -> tuple[list[tuple[int, httpx.Response]], httpx.Response]:
    """Clients send back to back before, during and after a reload: the swap is asked for
    once every client has had an answer, and each sends three more requests after it ends,
    so requests are in flight across the swap whatever the machine's speed."""
    answers: list[tuple[int, httpx.Response]] = []
    reloaded = asyncio.Event()
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=clients)) as c:

        async def client(k: int) -> None:
            i, after = k, 0
            while after < 3:
                answers.append(
                    (i % len(bodies), await c.post(f"{url}/predict", json=bodies[i % len(bodies)]))
                )
                i += clients
                after += reloaded.is_set()

        tasks = [asyncio.ensure_future(client(k)) for k in range(clients)]
        while len(answers) < clients:
            await asyncio.sleep(0.005)
        reload = await c.post(
            f"{url}/admin/reload", json={"export_dir": str(target)}, headers=BEARER
        )
        reloaded.set()
        await asyncio.gather(*tasks)
    return answers, reload


def test_reload_swaps_the_model_without_dropping_requests_in_flight(
    export: Export, tmp_path: Path
) -> None:
    x = export.test[:400]
    bodies = [{"rows": as_rows(x[i : i + 2], export.features)} for i in range(0, 400, 2)]
    before = direct_scores(export.folder, x)
    after = direct_scores(export.other, x)
    assert np.abs(before - after).max() > 1e-6  # the two models really differ
    admin = admin_overrides(tmp_path, export.root)
    with running_server(export.folder, "serve.max_wait_ms=5", *admin) as srv:
        old_version = srv.state.holder.current.version  # type: ignore[union-attr]
        answers, reload = asyncio.run(_traffic_across_reload(srv.url, bodies, export.other))
        late = httpx.post(f"{srv.url}/predict", json=bodies[0])
        bad = httpx.post(
            f"{srv.url}/admin/reload", json={"export_dir": "nonexistent/export"}, headers=BEARER
        )
        still = httpx.post(f"{srv.url}/predict", json=bodies[0])
        page = samples(httpx.get(f"{srv.url}/metrics").text)
    assert reload.status_code == 200, reload.text
    assert reload.json() == {
        "model_version": "reloaded-int8",
        "previous_version": old_version,
        "export_dir": str(export.other),
    }
    assert [a.status_code for _, a in answers] == [200] * len(answers)
    versions = [a.json()["model_version"] for _, a in answers]
    assert set(versions) == {old_version, "reloaded-int8"}  # the swap happened mid-traffic
    for (i, answer), version in zip(answers, versions, strict=True):
        # each request scored wholly by the model whose version it reports
        expected = before if version == old_version else after
        np.testing.assert_allclose(answer.json()["scores"], expected[2 * i : 2 * i + 2], atol=1e-6)
    assert late.json()["model_version"] == "reloaded-int8"
    assert bad.status_code == 422 and "nonexistent/export" in bad.json()["error"]
    assert still.status_code == 200 and still.json()["model_version"] == "reloaded-int8"
    assert page[("serve_model_reloads_total", (("result", "ok"),))] == 1
    assert page[("serve_model_reloads_total", (("result", "failed"),))] == 1


def test_a_card_with_a_decision_threshold_gets_labels_with_it(
    export: Export, tmp_path: Path
) -> None:
    folder = tmp_path / "export"
    shutil.copytree(export.folder, folder)
    card = json.loads((folder / "model_card.json").read_text())
    x = export.test[:20]
    threshold = float(np.median(direct_scores(folder, x)))  # so both labels occur
    card["decision_threshold"] = threshold
    (folder / "model_card.json").write_text(json.dumps(card))
    with running_server(folder) as srv:
        body = httpx.post(f"{srv.url}/predict", json={"rows": as_rows(x, export.features)}).json()
    assert body["decision_threshold"] == threshold
    assert body["labels"] == [int(s >= threshold) for s in body["scores"]]
    assert set(body["labels"]) == {0, 1}


def _start_cli(*args: str) -> tuple[subprocess.Popen[str], str]:
    """`python -m pipelines.serve ...` as `make serve` runs it; the URL from its ready line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.serve", "--port", "0", *args],
        cwd=REPO,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("serving "):
        proc.kill()
        raise AssertionError(f"no ready line: {line!r} {proc.communicate()[1]}")
    return proc, line.split()[-1]


def test_the_cli_prints_its_url_reloads_on_sighup_and_drains_on_sigterm(export: Export) -> None:
    proc, url = _start_cli("--export", str(export.folder), "serve.max_wait_ms=1000")
    try:
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/ready").status_code == 200
        proc.send_signal(signal.SIGHUP)
        page: dict = {}
        for _ in range(100):  # the reload runs in the background; poll its counter
            page = samples(httpx.get(f"{url}/metrics").text)
            if page.get(("serve_model_reloads_total", (("result", "ok"),))):
                break
            time.sleep(0.05)
        assert page[("serve_model_reloads_total", (("result", "ok"),))] == 1

        async def in_flight_then_terminate() -> list[httpx.Response]:
            body = {"rows": as_rows(export.test[:2], export.features)}
            async with httpx.AsyncClient(timeout=30) as client:
                tasks = [asyncio.ensure_future(client.post(f"{url}/predict", json=body))
                         for _ in range(8)]  # fmt: skip
                # SIGTERM only once all 8 wait in the queue (max_wait_ms holds them there)
                while True:
                    page = samples((await client.get(f"{url}/metrics")).text)
                    if page[("serve_queue_requests", ())] == 8:
                        break
                    await asyncio.sleep(0.01)
                proc.send_signal(signal.SIGTERM)
                return list(await asyncio.gather(*tasks))

        answers = asyncio.run(in_flight_then_terminate())
        assert [a.status_code for a in answers] == [200] * 8
        # uvicorn re-raises the signal it caught once its graceful shutdown is done, so the
        # status is "terminated by SIGTERM", as for any daemon; never a crash's 1 or 2
        assert proc.wait(30) in (0, -signal.SIGTERM)
        stderr = proc.stderr.read() if proc.stderr else ""
        # providers come from what the machine has: no CUDA provider load errors on CPU
        assert "Traceback" not in stderr
        if not session(export.folder / "model.onnx").get_providers()[0].startswith("CUDA"):
            assert "CUDA" not in stderr, stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_cli_refuses_a_missing_export_folder_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.serve", "--port", "0", "--export", str(tmp_path / "no")],
        cwd=REPO, env=env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: serve: ")
    assert str(tmp_path / "no") in lines[0]
