"""A shadow release scored on the primary's own batches: every batch the primary scores is
handed, as the adapter collated it, to the shadow's model, after the primary's inference and
off the requests' path (their answers do not wait for it). It runs on the primary's scoring
thread (`run_on`), queued behind the batch that produced it: one thread fewer than a thread of
its own, at the same measured cost (docs/benchmarks/serving.md, "Shadow cost"). The primary's
next batch waits for at most one shadow inference.

Nothing of a request is done twice but the shadow's inference: the body is not read, parsed,
tokenized or decoded again, the requests are not queued again, and the shadow's batch is the
primary's (one inference for what the primary scored in one). That holds only when both
adapters turn a body into the same input (`InputAdapter.input_signature`: the same
features, tokenizer or preprocessing); a shadow that reads requests differently is scored on
its own parse of a copy of each request (pipelines.serve.app._shadow).

The shadow is never allowed to build a backlog the primary pays for: when `MAX_BACKLOG`
batches already wait for it, a further batch is dropped (counted as `shadow_dropped` in
serve_errors_total, per request)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Executor, ThreadPoolExecutor

import numpy as np

from pipelines.serve.answers import top_scores
from pipelines.serve.metrics import ServeMetrics
from pipelines.serve.model import LoadedModel
from pipelines.serve.release import Outcome, Release

# batches waiting for (or being scored by) the shadow before further ones are dropped: one
# being scored and one formed meanwhile keeps the shadow busy without a queue that grows
MAX_BACKLOG = 2
_NONE = np.empty(0, dtype=np.float32)


def shares_input(shadow: LoadedModel, primary: LoadedModel) -> bool:
    """Whether the shadow can be scored on the primary's collated feeds."""
    return shadow.adapter.input_signature == primary.adapter.input_signature


class ShadowMirror:
    def __init__(self, release: Release, metrics: ServeMetrics) -> None:
        self.release, self.metrics = release, metrics
        self._executor: Executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow")
        self._own_executor = True
        self._backlog = 0
        self._lock = threading.Lock()

    def run_on(self, executor: Executor) -> None:
        """Score the shadow's batches on `executor` (the primary's scoring thread) instead of
        a thread of its own; its owner shuts it down."""
        self._executor.shutdown(wait=True)
        self._executor, self._own_executor = executor, False

    def offer(self, primary: LoadedModel, feeds: dict[str, np.ndarray], counts: list[int]) -> bool:
        """Hand a batch the primary scored (`counts`: each request's rows, in order) to the
        shadow, if one is served and reads requests as the primary does; whether it took it
        (False: the request path scores a copy itself). Called on the scoring thread: it
        only queues."""
        shadow = self.release.shadow()
        if shadow is None or shadow is primary or not shares_input(shadow, primary):
            return False
        with self._lock:
            full = self._backlog >= MAX_BACKLOG
            if not full:
                self._backlog += 1
        if full:
            self.metrics.errors.labels(kind="shadow_dropped").inc(len(counts))
            return True
        try:
            self._executor.submit(self._score, shadow, feeds, counts, time.perf_counter())
        except RuntimeError:  # shutting down: the copy is dropped, the primary was answered
            with self._lock:
                self._backlog -= 1
            self.metrics.errors.labels(kind="shadow_dropped").inc(len(counts))
        return True

    def _score(
        self, shadow: LoadedModel, feeds: dict[str, np.ndarray], counts: list[int], queued: float
    ) -> None:
        try:
            scores: np.ndarray | None = shadow.score(feeds)
            if not np.all(np.isfinite(scores)):
                scores = None
        except Exception:  # the shadow's failure shows only in its counters and its rule
            scores = None
        finally:
            with self._lock:
                self._backlog -= 1
        # each request waited for the batch: from its hand-off to the shadow's answer
        self._record(shadow, scores, counts, time.perf_counter() - queued)

    def _record(
        self, shadow: LoadedModel, scores: np.ndarray | None, counts: list[int], latency: float
    ) -> None:
        version, metrics = shadow.version, self.metrics
        if scores is None:
            metrics.version_requests.labels(version=version, role="shadow", outcome="error").inc(
                len(counts)
            )
            metrics.errors.labels(kind="shadow_failed").inc(len(counts))
            for _ in counts:
                self.release.record(shadow, Outcome(False, latency, _NONE))
            return
        top = top_scores(scores)
        metrics.version_requests.labels(version=version, role="shadow", outcome="ok").inc(
            len(counts)
        )
        latency_histogram = metrics.version_latency.labels(version=version, role="shadow")
        score_histogram = metrics.version_scores.labels(version=version, role="shadow")
        for score in top.tolist():
            score_histogram.observe(score)
        start = 0
        for rows in counts:
            latency_histogram.observe(latency)
            self.release.record(shadow, Outcome(True, latency, top[start : start + rows]))
            start += rows

    def stop(self) -> None:
        """Finish the batches handed over, then stop (a borrowed executor: its owner's)."""
        if self._own_executor:
            self._executor.shutdown(wait=True)
