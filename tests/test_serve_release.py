"""Canary and shadow releases over real HTTP: two tiny table export folders served side by
side by one server on loopback. A canary answers its share of requests (the same key, the same
version); one that fails on a share of requests, or whose scores move away from the
primary's, is stopped within its rollback window and no client gets more errors than the rule
allows; a shadow scores a copy of every request and never answers; POST /admin/promote (admin
token only) makes the candidate the primary."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from prometheus_client import generate_latest

from pipelines.serve.config import load_serve_config
from pipelines.serve.metrics import ServeMetrics
from pipelines.serve.model import load_model
from pipelines.serve.release import Release
from pipelines.serve.shadow import MAX_BACKLOG, ShadowMirror
from tests.serve_helpers import (
    BEARER,
    admin_overrides,
    multiclass_table_folder,
    post_all,
    running_server,
)
from tests.test_serve import samples

WINDOW, MAX_ERROR_RATE = 40, 0.05


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("release")
    multiclass_table_folder(root / "primary", seed=0, version="primary")
    multiclass_table_folder(root / "canary", seed=0, version="canary")
    # same kind of model, scores far more confident: its score distribution moves away
    multiclass_table_folder(root / "sharp", seed=0, version="sharp", sharpness=50.0)
    return {"primary": root / "primary", "canary": root / "canary", "sharp": root / "sharp"}


def rows(n: int, seed: int = 0) -> list[list[dict[str, float]]]:
    x = np.random.default_rng(seed).normal(size=(n, 3))
    return [[{"age": a, "amount": b, "hour": c}] for a, b, c in x.tolist()]


def release(mode: str, folder: Path, *extra: str) -> list[str]:
    return [
        f"serve.release.mode={mode}",
        f"serve.release.export_dir={folder}",
        f"serve.release.rollback.window_requests={WINDOW}",
        "serve.release.rollback.min_requests=20",
        f"serve.release.rollback.max_error_rate={MAX_ERROR_RATE}",
        *extra,
    ]


class Flaky:
    """Stands in for the canary's ORT session: every other inference fails, as a model that
    breaks on a share of its inputs does."""

    def __init__(self, real) -> None:
        self.real, self.calls = real, 0

    def run(self, *args):
        self.calls += 1
        if self.calls % 2 == 0:
            raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : node Gemm_0 failed")
        return self.real.run(*args)


def test_a_canary_answers_its_share_and_the_same_key_always_gets_the_same_version(
    folders,
) -> None:
    keys = [f"user-{i}" for i in range(60)] * 3
    with running_server(
        folders["primary"], *release("canary", folders["canary"], "serve.release.share=0.3")
    ) as srv:
        versions: dict[str, set[str]] = {}
        for key, body in zip(keys, rows(len(keys)), strict=True):
            answer = httpx.post(
                f"{srv.url}/predict", json={"rows": body}, headers={"x-request-key": key}
            )
            assert answer.status_code == 200
            versions.setdefault(key, set()).add(answer.json()["model_version"])
        page = samples(httpx.get(f"{srv.url}/metrics").text)
    assert all(len(v) == 1 for v in versions.values())  # sticky
    canary_keys = sum(v == {"canary"} for v in versions.values())
    assert 6 <= canary_keys <= 30  # 30% of 60 keys, give or take the hash
    requests = ("serve_version_requests_total", "role", "version")
    by_role = {
        role: page[(requests[0], (("outcome", "ok"), ("role", role), ("version", role)))]
        for role in ("primary", "canary")
    }
    assert by_role == {"canary": 3 * canary_keys, "primary": 3 * (60 - canary_keys)}


def test_a_failing_canary_is_rolled_back_within_its_window_and_clients_see_no_more(
    folders,
) -> None:
    with running_server(
        folders["primary"], *release("canary", folders["canary"], "serve.release.share=0.5")
    ) as srv:
        canary = srv.state.release.candidate
        assert canary is not None
        canary.session = Flaky(canary.session)
        answers = [httpx.post(f"{srv.url}/predict", json={"rows": b}) for b in rows(200)]
        status = httpx.get(f"{srv.url}/model").json()["release"]
        page = samples(httpx.get(f"{srv.url}/metrics").text)
    failed = [i for i, a in enumerate(answers) if a.status_code != 200]
    allowed = math.floor(MAX_ERROR_RATE * WINDOW) + 1
    assert len(failed) == allowed  # the failure that trips the rule is the last one anyone sees
    assert all(answers[i].status_code == 500 for i in failed)
    after = answers[failed[-1] + 1 :]
    assert len(after) > 100 and {a.json()["model_version"] for a in after} == {"primary"}
    assert status["candidate_version"] is None and "canary: error_rate" in status["stopped"]
    assert page[("serve_release_rollbacks_total", (("reason", "error_rate"),))] == 1
    assert page[("serve_release_active", (("role", "canary"),))] == 0


def test_a_canary_whose_scores_move_away_from_the_primary_is_rolled_back(folders) -> None:
    with running_server(
        folders["primary"], *release("canary", folders["sharp"], "serve.release.share=0.5")
    ) as srv:
        # keyed requests: the same routing on every run, and keys that give the primary its
        # min_requests (20) scores before the canary's 20th request (at random, it had fewer
        # in about half the runs, and the canary was judged at its 30th or 40th)
        answers = [
            httpx.post(
                f"{srv.url}/predict", json={"rows": b}, headers={"x-request-key": f"user-{i}"}
            )
            for i, b in enumerate(rows(200))
        ]
        status = httpx.get(f"{srv.url}/model").json()["release"]
        page = samples(httpx.get(f"{srv.url}/metrics").text)
    assert all(a.status_code == 200 for a in answers)
    assert "sharp: score_psi" in status["stopped"]
    assert page[("serve_release_rollbacks_total", (("reason", "score_psi"),))] == 1
    sharp = [i for i, a in enumerate(answers) if a.json()["model_version"] == "sharp"]
    # judged from min_requests (20) on, every 10th request: stopped at its 20th, never again
    assert len(sharp) == 20 and sharp[-1] < len(answers) - 50


def test_a_shadow_scores_a_copy_of_every_request_and_never_answers_nor_fails_one(
    folders,
) -> None:
    with running_server(folders["primary"], *release("shadow", folders["canary"])) as srv:
        shadow = srv.state.release.candidate
        assert shadow is not None
        answers = [httpx.post(f"{srv.url}/predict", json={"rows": b}) for b in rows(30)]
        deadline = time.monotonic() + 10
        key = ("serve_version_requests_total", (("outcome", "ok"), ("role", "shadow"),
                                                ("version", "canary")))  # fmt: skip
        while samples(httpx.get(f"{srv.url}/metrics").text).get(key, 0) < 30:
            assert time.monotonic() < deadline, "shadow copies not scored"
            time.sleep(0.05)
        shadow.session = Flaky(shadow.session)  # now it breaks: no client may notice
        later = [httpx.post(f"{srv.url}/predict", json={"rows": b}) for b in rows(100, 1)]
        time.sleep(0.5)
        status = httpx.get(f"{srv.url}/model").json()["release"]
    assert {a.json()["model_version"] for a in answers + later} == {"primary"}
    assert all(a.status_code == 200 for a in answers + later)
    assert "canary: error_rate" in status["stopped"]


def test_promote_needs_the_admin_token_and_makes_the_canary_the_primary(
    folders, tmp_path: Path
) -> None:
    with running_server(
        folders["primary"],
        *release("canary", folders["canary"], "serve.release.share=0.1"),
        *admin_overrides(tmp_path),
    ) as srv:
        refused = httpx.post(f"{srv.url}/admin/promote")
        promoted = httpx.post(f"{srv.url}/admin/promote", headers=BEARER)
        answers = [httpx.post(f"{srv.url}/predict", json={"rows": b}) for b in rows(20)]
        again = httpx.post(f"{srv.url}/admin/promote", headers=BEARER)
        info = samples(httpx.get(f"{srv.url}/metrics").text)
    assert refused.status_code == 401
    assert promoted.status_code == 200
    assert promoted.json()["model_version"] == "canary"
    assert promoted.json()["previous_version"] == "primary"
    assert {a.json()["model_version"] for a in answers} == {"canary"}
    assert again.status_code == 409 and "no canary or shadow" in again.json()["error"]
    assert info[("serve_model_info", (("model", "linear"), ("variant", ""),
                                      ("version", "canary")))] == 1  # fmt: skip


class Counting:
    """Counts the calls of one method of an object it stands in for."""

    def __init__(self, real, method: str) -> None:
        self.real, self.method, self.calls = real, method, 0

    def __getattr__(self, name: str):
        attr = getattr(self.real, name)
        if name != self.method:
            return attr

        def counted(*args, **kwargs):
            self.calls += 1
            return attr(*args, **kwargs)

        return counted


def _shadow_scored(url: str, version: str, n: int) -> None:
    deadline = time.monotonic() + 10
    key = ("serve_version_requests_total", (("outcome", "ok"), ("role", "shadow"),
                                            ("version", version)))  # fmt: skip
    while samples(httpx.get(f"{url}/metrics").text).get(key, 0) < n:
        assert time.monotonic() < deadline, "shadow copies not scored"
        time.sleep(0.05)


def test_a_shadow_reading_requests_as_the_primary_does_is_scored_on_the_primarys_batches(
    folders,
) -> None:
    """Nothing is parsed twice and the shadow runs one inference per batch of the primary's,
    whatever the number of requests in it."""
    batched = ["serve.max_wait_ms=100", "serve.max_batch=64"]
    with running_server(folders["primary"], *release("shadow", folders["canary"]), *batched) as srv:
        shadow = srv.state.release.candidate
        shadow.session = Counting(shadow.session, "run")
        shadow.adapter = Counting(shadow.adapter, "parse")
        answers = post_all(srv.url, [{"rows": b} for b in rows(24)])
        _shadow_scored(srv.url, "canary", 24)
    assert all(a.status_code == 200 for a in answers)
    batches = {a.headers["x-batch-id"] for a in answers}
    assert len(batches) < len(answers)  # some requests shared a batch
    assert shadow.session.calls == len(batches) and shadow.adapter.calls == 0


class Recording:
    """An ORT session that notes (who, thread) of each inference in `calls`."""

    def __init__(self, real, who: str, calls: list[tuple[str, str]]) -> None:
        self.real, self.who, self.calls = real, who, calls

    def run(self, *args):
        self.calls.append((self.who, threading.current_thread().name))
        return self.real.run(*args)


def test_a_shadows_batch_runs_on_the_primarys_scoring_thread_right_after_the_primarys(
    folders,
) -> None:
    """No thread of the shadow's own to wake: its copy of a batch queues behind the primary's
    on the scoring thread, so the primary's next batch waits for at most one of them."""
    calls: list[tuple[str, str]] = []
    with running_server(folders["primary"], *release("shadow", folders["canary"])) as srv:
        primary, shadow = srv.state.holder.current, srv.state.release.candidate
        primary.session = Recording(primary.session, "primary", calls)
        shadow.session = Recording(shadow.session, "shadow", calls)
        answers = [httpx.post(f"{srv.url}/predict", json={"rows": b}) for b in rows(10)]
        _shadow_scored(srv.url, "canary", 10)
    assert all(a.status_code == 200 for a in answers)
    assert [who for who, _ in calls] == ["primary", "shadow"] * 10
    assert len({thread for _, thread in calls}) == 1 and calls[0][1].startswith("score")


def test_a_shadow_reading_requests_differently_parses_and_scores_its_own_copy(folders) -> None:
    with running_server(folders["primary"], *release("shadow", folders["canary"])) as srv:
        shadow = srv.state.release.candidate
        other = type("OtherReading", (type(shadow.adapter),), {"input_signature": "other"})
        shadow.adapter.__class__ = other  # say it reads bodies its own way
        shadow.adapter = Counting(shadow.adapter, "parse")
        answers = [httpx.post(f"{srv.url}/predict", json={"rows": b}) for b in rows(10)]
        _shadow_scored(srv.url, "canary", 10)
    assert all(a.status_code == 200 for a in answers)
    assert shadow.adapter.calls == 10


def test_requests_sharing_a_failing_canary_batch_see_no_more_errors_than_the_rule_allows(
    folders,
) -> None:
    """Concurrent requests batched together fail together on a broken canary; those its
    rule's allowance does not cover are answered by the primary instead."""
    batched = ["serve.release.share=1.0", "serve.max_wait_ms=200", "serve.max_batch=64"]
    with running_server(folders["primary"], *release("canary", folders["canary"], *batched)) as srv:
        canary = srv.state.release.candidate
        canary.session = Broken()
        answers = post_all(srv.url, [{"rows": b} for b in rows(30)])
        status = httpx.get(f"{srv.url}/model").json()["release"]
    failed = [a for a in answers if a.status_code != 200]
    assert max(int(a.headers["x-batch-requests"]) for a in answers if a.status_code == 200) > 1
    assert len(failed) == math.floor(MAX_ERROR_RATE * WINDOW) + 1
    assert {a.json()["model_version"] for a in answers if a.status_code == 200} == {"primary"}
    assert "canary: error_rate" in status["stopped"]


class Broken:
    """A canary session that fails every inference."""

    def run(self, *args):
        raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : node Gemm_0 failed")


class Gated:
    """A session whose inferences wait for `gate`: a shadow slower than the traffic."""

    def __init__(self, real, gate: threading.Event) -> None:
        self.real, self.gate = real, gate

    def run(self, *args):
        assert self.gate.wait(10)
        return self.real.run(*args)


def test_a_shadow_that_falls_behind_drops_batches_and_counts_them(folders) -> None:
    """The primary never waits for its shadow: past MAX_BACKLOG batches, copies are dropped."""
    cfg = load_serve_config(
        overrides=["serve.warmup_rounds=0", *release("shadow", folders["canary"])]
    )
    metrics = ServeMetrics(cfg.max_batch)
    candidates = Release(cfg.release, metrics)
    primary, shadow = load_model(folders["primary"], cfg), load_model(folders["canary"], cfg)
    candidates.start(shadow)
    gate = threading.Event()
    shadow.session = Gated(shadow.session, gate)
    mirror = ShadowMirror(candidates, metrics)
    feeds = primary.adapter.collate([primary.adapter.warm_input(3)])
    started = time.perf_counter()
    taken = [mirror.offer(primary, feeds, [1, 2]) for _ in range(5)]  # 5 batches of 2 requests
    assert time.perf_counter() - started < 0.5  # offering never waits for the shadow
    gate.set()
    mirror.stop()
    page = samples(generate_latest(metrics.registry).decode())
    assert taken == [True] * 5
    assert page[("serve_errors_total", (("kind", "shadow_dropped"),))] == 2 * (5 - MAX_BACKLOG)
    scored = ("serve_version_requests_total", (("outcome", "ok"), ("role", "shadow"),
                                               ("version", "canary")))  # fmt: skip
    assert page[scored] == 2 * MAX_BACKLOG
    assert not mirror.offer(shadow, feeds, [3])  # the shadow's own batches are not mirrored
