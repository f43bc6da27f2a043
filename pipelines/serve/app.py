"""The HTTP surface: /predict (any modality: the loaded model's input adapter reads the body),
/health, /ready, /model, /metrics and /admin/reload, as a Starlette app over one Batcher and
one ModelHolder. Everything under /admin answers only a request carrying the admin token
(pipelines/serve/admin.py).

Every client error is a 4xx whose JSON body is {"error": "<one line naming the field>"}; any
other failure inside a request is a 5xx counted in `serve_errors_total`; nothing a request
sends can stop the process."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from pipelines.errors import PipelineError
from pipelines.serve.admin import AdminGate, AdminGuard, Refusal, refuse
from pipelines.serve.answers import answer_body, top_scores
from pipelines.serve.batching import Batcher, QueueFull, Scored, ScoringError
from pipelines.serve.config import ServeConfig
from pipelines.serve.drift import DriftMonitor
from pipelines.serve.feedback import FeedbackStore, QualityCollector
from pipelines.serve.inputs import Parsed
from pipelines.serve.metrics import ServeMetrics
from pipelines.serve.model import LoadedModel, ModelHolder, load_warm
from pipelines.serve.release import Outcome, Release
from pipelines.serve.requests import BadRequest, parse_json
from pipelines.serve.shadow import ShadowMirror, shares_input


class ServerState:
    """Everything one server owns; `app.state.server` in the handlers."""

    def __init__(self, cfg: ServeConfig) -> None:
        self.cfg = cfg
        self.admin = AdminGate(cfg)  # reads the token; refuses an open admin API on the network
        self.metrics = ServeMetrics(cfg.max_batch)
        self.holder = ModelHolder()
        self.batcher: Batcher | None = None
        self.started = time.monotonic()
        self.ready = False
        self.load_error: str | None = None
        self.closing = False
        self.exit_code = 0
        self.url = ""  # set by the runner once the socket is bound
        self.on_ready: Callable[[ServerState], None] | None = None
        self.on_fatal: Callable[[str], None] | None = None
        self.metrics.add_drift(self._drift_monitor, cfg.drift.min_rows)
        self.release = Release(cfg.release, self.metrics)
        self.feedback = FeedbackStore(cfg.feedback)
        self.metrics.registry.register(QualityCollector(self.feedback, self.served_models))
        # a shadow reading requests as the primary does scores the primary's batches
        self.mirror = ShadowMirror(self.release, self.metrics)
        self.background: set[asyncio.Task[None]] = set()  # other shadows' copies being scored

    def served_models(self) -> list[LoadedModel]:
        """The primary and the release candidate, if any."""
        return [m for m in (self.holder.current, self.release.candidate) if m is not None]

    def _drift_monitor(self) -> DriftMonitor | None:
        model = self.holder.current
        return model.drift if model else None

    def on_batch(
        self,
        model: LoadedModel,
        feeds: dict[str, np.ndarray],
        scores: np.ndarray,
        counts: list[int],
    ) -> None:
        """Runs on the scoring thread after each batch: the shadow's copy of it (queued, not
        waited for), score histogram. (The drift window takes each request's parsed
        measurements once it is answered: _predict.)"""
        self.mirror.offer(model, feeds, counts)
        for score in top_scores(scores).tolist():
            self.metrics.scores.observe(score)
        self.metrics.rows.inc(len(scores))

    async def start_release(self) -> None:
        """Load the candidate of serve.release beside the primary (a fatal error when it
        cannot load or reads another modality's requests)."""
        cfg, primary = self.cfg, self.holder.current
        if cfg.release.mode == "off" or primary is None:
            return
        loop = asyncio.get_running_loop()
        candidate = await loop.run_in_executor(None, load_warm, cfg.release.export_dir, cfg)
        if candidate.adapter.modality != primary.adapter.modality:
            raise PipelineError(
                f"config key 'serve.release.export_dir' = {cfg.release.export_dir!r}: a "
                f"{candidate.adapter.modality} model; the primary is {primary.adapter.modality}"
            )
        self.release.start(candidate)

    async def load(self, folder: str | Path) -> LoadedModel:
        """Load, verify and warm a model off the event loop, then make it the current one."""
        cfg = self.cfg
        loop = asyncio.get_running_loop()
        model = await loop.run_in_executor(None, self.holder.load, folder, cfg)
        self.metrics.set_model(
            model.version, str(model.card.get("model", "")), str(model.card.get("variant", ""))
        )
        return model


def _error(
    state: ServerState, status: int, kind: str, message: str, request_id: str | None = None
) -> JSONResponse:
    state.metrics.errors.labels(kind=kind).inc()
    if request_id is None:
        return JSONResponse({"error": message}, status_code=status)
    return JSONResponse(
        {"error": message, "request_id": request_id},
        status_code=status,
        headers={"x-request-id": request_id},
    )


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refusing more than `limit` bytes whether or not Content-Length says so."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest(400, "bad_header", f"header 'content-length': {declared!r}")
        if int(declared) > limit:
            raise BadRequest(
                413,
                "body_too_large",
                f"body: {declared} bytes > serve.max_body_bytes = {limit}",
            )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(
                413, "body_too_large", f"body: more than serve.max_body_bytes = {limit} bytes"
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def predict(request: Request) -> Response:
    state: ServerState = request.app.state.server
    started = time.perf_counter()
    response = await _predict(state, request)
    state.metrics.requests.labels(code=str(response.status_code)).inc()
    state.metrics.request_latency.observe(time.perf_counter() - started)
    return response


def _request_id(request: Request) -> str:
    """The client's `x-request-id` when it sent a usable one (to join its own logs), else a
    fresh one; every /predict answer carries it."""
    given = request.headers.get("x-request-id", "")
    if 0 < len(given) <= 128 and given.isprintable():
        return given
    return uuid.uuid4().hex


async def _predict(state: ServerState, request: Request) -> Response:
    request_id = _request_id(request)
    model = state.holder.current
    if model is None or state.batcher is None or not state.ready:
        return _error(
            state, 503, "not_ready", "model not loaded yet: retry when /ready says so", request_id
        )
    canary = state.release.canary_for(request.headers.get(state.cfg.release.sticky_header))
    target = canary or model
    try:
        body = await _read_body(request, state.cfg.max_body_bytes)
        content_type = request.headers.get("content-type", "")
        parsed = await _parse(state, target, body, content_type)
        try:
            scored = await _score(state, target, "canary" if canary else "primary", parsed)
        except CandidateStopped:
            # the canary failed this request after its rule had already stopped it (a
            # batch-mate's failure did): the primary answers it, as every later request,
            # so no client sees more of a canary's errors than the rule allows
            if not shares_input(target, model):
                parsed = await _parse(state, model, body, content_type)
            target = model
            scored = await _score(state, model, "primary", parsed)
    except BadRequest as err:
        return _error(state, err.status, err.kind, str(err), request_id)
    except QueueFull as err:
        return _error(state, 503, "overloaded", f"overloaded: {err}", request_id)
    except ScoringError as err:
        return _error(state, 500, "scoring", str(err), request_id)
    except ClientDisconnect:
        return _error(state, 499, "client_disconnected", "client went away", request_id)
    except Exception as err:  # a bug of ours: answer 500 and count it, never take the loop down
        reason = " ".join(str(err).split())[:300] or type(err).__name__
        return _error(state, 500, "internal", f"internal error: {reason}", request_id)
    shadow = state.release.shadow()
    if shadow is not None and not shares_input(shadow, target):  # else scored by the mirror
        task = asyncio.get_running_loop().create_task(
            _shadow(state, shadow, body, request.headers.get("content-type", ""))
        )
        state.background.add(task)
        task.add_done_callback(state.background.discard)
    if scored.model.drift is not None and parsed.drift is not None:
        scored.model.drift.observe(parsed.drift)
    state.feedback.answered(request_id, scored.model, scored.scores)
    answer = {**answer_body(scored.model, scored.scores, request_id), **parsed.notes}
    headers = {
        "x-request-id": request_id,
        # which inference scored this request, for clients and tests that check batching
        "x-batch-id": str(scored.batch_id),
        "x-batch-rows": str(scored.batch_rows),
        "x-batch-requests": str(scored.batch_requests),
    }
    if "truncated" in parsed.notes:
        headers["x-truncated"] = ",".join(map(str, parsed.notes["truncated"]))
    return Response(
        json.dumps(answer, separators=(",", ":")), media_type="application/json", headers=headers
    )


async def _parse(state: ServerState, model: LoadedModel, body: bytes, content_type: str) -> Parsed:
    """The body as `model`'s input, parsed where its adapter says (BadRequest otherwise)."""
    adapter, limit = model.adapter, state.cfg.max_rows_per_request
    if not adapter.parse_off_loop:
        return adapter.parse(body, content_type, limit)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, adapter.parse, body, content_type, limit)


async def _score(state: ServerState, model: LoadedModel, role: str, parsed: Parsed) -> Scored:
    """Queue one request for `model` and record it per version; a candidate's outcome is
    judged by the rollback rule."""
    assert state.batcher is not None
    metrics, version = state.metrics, model.version
    started = time.perf_counter()
    try:
        scored = await state.batcher.submit(parsed.data, parsed.rows, model)
    except ScoringError:
        metrics.version_requests.labels(version=version, role=role, outcome="error").inc()
        if role != "primary":
            release = state.release
            tripped = release.record(model, Outcome(False, time.perf_counter() - started, _NONE))
            if role == "canary" and tripped is None and release.candidate is not model:
                raise CandidateStopped() from None
        raise
    elapsed = time.perf_counter() - started
    top = top_scores(scored.scores)
    metrics.version_requests.labels(version=version, role=role, outcome="ok").inc()
    metrics.version_latency.labels(version=version, role=role).observe(elapsed)
    histogram = metrics.version_scores.labels(version=version, role=role)
    for score in top.tolist():
        histogram.observe(score)
    if role == "primary":
        if state.release.candidate is not None:
            state.release.record_primary(top)
    else:
        state.release.record(model, Outcome(True, elapsed, top))
    return scored


_NONE = np.empty(0, dtype=np.float32)


class CandidateStopped(ScoringError):
    """A canary's failure on a request it received before its rule stopped it."""


async def _shadow(state: ServerState, model: LoadedModel, body: bytes, content_type: str) -> None:
    """Score a copy of an answered request on a shadow whose adapter reads requests
    differently from the primary's (parsed by its own); its outcome is recorded and judged,
    never answered."""
    try:
        parsed = await _parse(state, model, body, content_type)
        await _score(state, model, "shadow", parsed)
    except QueueFull:  # the primary's traffic comes first: the copy is dropped
        state.metrics.errors.labels(kind="shadow_dropped").inc()
    except (BadRequest, ScoringError):  # recorded by _score (or a schema the shadow refuses)
        state.metrics.errors.labels(kind="shadow_failed").inc()
    except Exception:  # never let a shadow's failure surface anywhere but its counters
        state.metrics.errors.labels(kind="shadow_failed").inc()


async def feedback(request: Request) -> Response:
    """POST /feedback {"request_id": ..., "label": ...}: the true label of an answered request."""
    state: ServerState = request.app.state.server
    try:
        body = await _read_body(request, state.cfg.max_body_bytes)
        joined = state.feedback.label(parse_json(body))
    except BadRequest as err:
        state.metrics.feedback.labels(result=err.kind).inc()
        return _error(state, err.status, err.kind, str(err))
    state.metrics.feedback.labels(result="joined").inc()
    return JSONResponse(joined)


async def health(request: Request) -> Response:
    state: ServerState = request.app.state.server
    return JSONResponse(
        {"status": "alive", "ready": state.ready, "uptime_s": time.monotonic() - state.started}
    )


async def ready(request: Request) -> Response:
    state: ServerState = request.app.state.server
    model = state.holder.current
    if state.ready and model is not None and not state.closing:
        return JSONResponse({"ready": True, "model_version": model.version})
    reason = (
        "shutting down"
        if state.closing
        else f"model failed to load: {state.load_error}"
        if state.load_error
        else "loading model"
    )
    return JSONResponse({"ready": False, "reason": reason}, status_code=503)


async def model_card(request: Request) -> Response:
    state: ServerState = request.app.state.server
    model = state.holder.current
    if model is None:
        return _error(state, 503, "not_ready", "model not loaded yet")
    return JSONResponse(
        {
            "model_version": model.version,
            "export_dir": str(model.folder),
            "modality": model.adapter.modality,
            "features": model.features,
            "labels": model.labels,
            "drift_reference": model.reference is not None,
            "release": state.release.status(),
            "decision_threshold": model.decision_threshold,
            "card": model.card,
        }
    )


async def metrics(request: Request) -> Response:
    state: ServerState = request.app.state.server
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def reload(request: Request) -> Response:
    state: ServerState = request.app.state.server
    if not state.cfg.allow_reload:
        return _error(state, 403, "reload_disabled", "reload disabled: serve.allow_reload = false")
    try:
        body = await _read_body(request, state.cfg.max_body_bytes)
        payload = parse_json(body) if body.strip() else {}
    except BadRequest as err:
        return _error(state, err.status, err.kind, str(err))
    folder = payload.get("export_dir") if isinstance(payload, dict) else None
    if folder is not None and not isinstance(folder, str):
        return _error(state, 422, "wrong_type", "field 'export_dir': expected a path string")
    try:
        target = str(state.admin.reload_target(folder)) if folder is not None else None
    except Refusal as refusal:
        return refuse(state, refusal, request.scope)
    return await do_reload(state, target)


async def do_reload(state: ServerState, folder: str | None) -> JSONResponse:
    """Swap to `folder` (default: the folder being served, e.g. after `dvc repro` rewrote it).
    Requests already queued are scored by the model they were validated with."""
    previous = state.holder.current
    target = folder or (str(previous.folder) if previous else state.cfg.export_dir)
    try:
        model = await state.load(target)
    except PipelineError as err:
        state.metrics.reloads.labels(result="failed").inc()
        return _error(state, 422, "reload_failed", f"reload failed, still serving: {err}")
    except Exception as err:  # any other loader failure must not take the server down
        state.metrics.reloads.labels(result="failed").inc()
        reason = " ".join(str(err).split())[:300]
        return _error(state, 500, "reload_failed", f"reload failed, still serving: {reason}")
    state.metrics.reloads.labels(result="ok").inc()
    return JSONResponse(
        {
            "model_version": model.version,
            "previous_version": previous.version if previous else None,
            "export_dir": str(model.folder),
        }
    )


async def promote(request: Request) -> Response:
    """Make the canary (or shadow) the primary; the release ends."""
    state: ServerState = request.app.state.server
    candidate = state.release.take()
    if candidate is None:
        reason = f" (stopped: {state.release.stopped})" if state.release.stopped else ""
        return _error(
            state, 409, "no_candidate", f"promote: no canary or shadow is being served{reason}"
        )
    previous = state.holder.current
    state.holder.promote(candidate)
    state.metrics.set_model(
        candidate.version,
        str(candidate.card.get("model", "")),
        str(candidate.card.get("variant", "")),
    )
    print(f"release: promoted {candidate.version}", file=sys.stderr, flush=True)
    return JSONResponse(
        {
            "model_version": candidate.version,
            "previous_version": previous.version if previous else None,
            "export_dir": str(candidate.folder),
        }
    )


async def _startup(state: ServerState) -> None:
    try:
        await state.load(state.cfg.export_dir)
        await state.start_release()
    except Exception as err:  # the process cannot serve without a model: say why, then exit
        state.load_error = " ".join(str(err).split())
        if state.on_fatal:
            state.on_fatal(state.load_error)
        return
    # everything loaded so far (torch, ORT, numpy: a few hundred thousand objects) lives as
    # long as the process; freezing it keeps the cyclic GC from rescanning it, whose full
    # passes otherwise stall every request in flight for tens of ms under load
    gc.collect()
    gc.freeze()
    state.ready = True
    state.metrics.ready.set(1)
    if state.on_ready:
        state.on_ready(state)


def _install_sighup(state: ServerState) -> None:
    """SIGHUP reloads the served folder, as daemons conventionally do; only possible where the
    loop runs in the main thread (not in tests that run the server on a thread)."""
    import signal

    loop = asyncio.get_running_loop()

    def hup() -> None:
        async def run() -> None:
            answer = await do_reload(state, None)
            print(f"reload: {answer.body.decode()}", file=sys.stderr, flush=True)

        loop.create_task(run())

    with contextlib.suppress(ValueError, RuntimeError, NotImplementedError, AttributeError):
        loop.add_signal_handler(signal.SIGHUP, hup)


def create_app(cfg: ServeConfig) -> Starlette:
    state = ServerState(cfg)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.batcher = Batcher(
            cfg.max_batch,
            cfg.max_wait_ms,
            cfg.max_queue_rows,
            state.metrics,
            batching=cfg.batching,
            on_batch=state.on_batch,
            inference_thread=cfg.inference_thread,
        )
        state.mirror.run_on(state.batcher.executor)  # a shadow's batch follows the primary's
        state.batcher.start()
        _install_sighup(state)
        loader = asyncio.get_running_loop().create_task(_startup(state))
        try:
            yield
        finally:
            # uvicorn has stopped accepting and waited for open requests; score what is left
            state.closing = True
            state.ready = False
            state.metrics.ready.set(0)
            loader.cancel()
            await state.batcher.stop()
            state.mirror.stop()

    app = Starlette(
        routes=[
            Route("/predict", predict, methods=["POST"]),
            Route("/feedback", feedback, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            Route("/ready", ready, methods=["GET"]),
            Route("/model", model_card, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Mount(
                "/admin",
                routes=[
                    Route("/reload", reload, methods=["POST"]),
                    Route("/promote", promote, methods=["POST"]),
                ],
                middleware=[Middleware(AdminGuard)],
            ),
        ],
        lifespan=lifespan,
    )
    app.state.server = state
    return app
