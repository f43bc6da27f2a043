"""Canary and shadow releases: a candidate export folder beside the primary one, with the
rollback rule of `serve.release.rollback` judged after each of the candidate's requests.

A canary answers `share` of the requests (sticky by `sticky_header` when a request carries
it); a shadow scores a copy of every request after the primary answered it and is never
answered. Either is stopped (and the reason logged and counted) as soon as, over its last
`window_requests` requests, its failures exceed `max_error_rate x window_requests` (judged on
every request), or (from `min_requests` on, judged every JUDGE_EVERY requests) its p99 latency
exceeds `max_p99_ms` or its score PSI against the primary's recent scores exceeds
`max_score_psi`."""

from __future__ import annotations

import hashlib
import math
import random
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from pipelines.drift_reference import assign_bins, psi
from pipelines.serve.config import ReleaseConfig
from pipelines.serve.metrics import SCORE_BUCKETS, ServeMetrics
from pipelines.serve.model import LoadedModel

# p99 latency and score PSI are judged on every JUDGE_EVERY-th request of the candidate
JUDGE_EVERY = 10
# the score histogram's bins (fine near 0, where fraud-style scores pile up)
SCORE_EDGES = np.asarray(SCORE_BUCKETS[:-1], dtype=np.float64)


@dataclass
class Outcome:
    ok: bool
    latency_s: float
    scores: np.ndarray  # top scores of the rows (empty on failure)


class Release:
    def __init__(self, cfg: ReleaseConfig, metrics: ServeMetrics) -> None:
        self.cfg, self.rule, self.metrics = cfg, cfg.rollback, metrics
        self.candidate: LoadedModel | None = None
        self.stopped: str | None = None  # why the last candidate was stopped
        # wall-clock times (Unix seconds) of the candidate's first failed request and of its
        # stop: how long a failing candidate kept serving (benchmarks/serving_rollback.py)
        self.first_failure_at: float | None = None
        self.stopped_at: float | None = None
        self._window: deque[Outcome] = deque(maxlen=self.rule.window_requests)
        self._failed = 0  # failures in the window, kept as it slides
        self._seen = 0  # the candidate's requests so far
        # the primary's recent scores, what the candidate's are compared with
        self._primary: deque[float] = deque(maxlen=self.rule.window_requests * 8)
        self._lock = threading.Lock()

    @property
    def mode(self) -> str:
        return self.cfg.mode

    def start(self, candidate: LoadedModel) -> None:
        with self._lock:
            self.candidate, self.stopped = candidate, None
            self.first_failure_at = self.stopped_at = None
            self._window.clear()
            self._failed = self._seen = 0
        self.metrics.release_active.labels(role=self.mode).set(1)

    def canary_for(self, key: str | None) -> LoadedModel | None:
        """The canary, when this request is one of its share; else None (the primary)."""
        candidate = self.candidate
        if candidate is None or self.mode != "canary":
            return None
        if key:
            digest = hashlib.sha256(key.encode("utf-8", "replace")).digest()
            point = int.from_bytes(digest[:8], "big") / 2**64
        else:
            point = random.random()
        return candidate if point < self.cfg.share else None

    def shadow(self) -> LoadedModel | None:
        return self.candidate if self.mode == "shadow" else None

    def record_primary(self, scores: np.ndarray) -> None:
        self._primary.extend(scores.tolist())

    def record(self, model: LoadedModel, outcome: Outcome) -> str | None:
        """Count one of the candidate's requests and judge the rule; the reason when this
        request stopped the candidate."""
        with self._lock:
            if model is not self.candidate:
                return None  # already stopped or promoted: requests still in flight
            if len(self._window) == self._window.maxlen and not self._window[0].ok:
                self._failed -= 1  # the oldest outcome slides out
            self._window.append(outcome)
            self._failed += not outcome.ok
            if not outcome.ok and self.first_failure_at is None:
                self.first_failure_at = time.time()
            self._seen += 1
            reason = self._verdict()
            if reason is None:
                return None
            self.candidate, self.stopped = None, f"{model.version}: {reason}"
            self.stopped_at = time.time()
        self.metrics.release_active.labels(role=self.mode).set(0)
        self.metrics.rollbacks.labels(reason=reason.split(" ")[0]).inc()
        print(f"release: {self.mode} {self.stopped}; stopped", file=sys.stderr, flush=True)
        return reason

    def _verdict(self) -> str | None:
        """The error count after every request; p99 and PSI (a percentile and two histograms
        over the window) every JUDGE_EVERY requests, which keeps a shadow's cost per request
        near its inference's."""
        rule = self.rule
        allowed = math.floor(rule.max_error_rate * rule.window_requests)
        if self._failed > allowed:
            return (
                f"error_rate {self._failed} failed of the last {len(self._window)} requests > "
                f"{rule.max_error_rate:g} x {rule.window_requests}"
            )
        if len(self._window) < rule.min_requests or self._seen % JUDGE_EVERY:
            return None
        window = list(self._window)
        p99_ms = float(np.percentile([o.latency_s for o in window], 99)) * 1000
        if p99_ms > rule.max_p99_ms:
            return f"p99_latency {p99_ms:.1f} ms > {rule.max_p99_ms:g} ms"
        scores = np.concatenate([o.scores for o in window if o.ok] or [np.empty(0)])
        primary = np.asarray(self._primary, dtype=np.float64)
        if len(scores) >= rule.min_requests and len(primary) >= rule.min_requests:
            bins = len(SCORE_EDGES) + 1
            value = psi(
                np.bincount(assign_bins(primary, SCORE_EDGES), minlength=bins),
                np.bincount(assign_bins(scores, SCORE_EDGES), minlength=bins),
            )
            if value > rule.max_score_psi:
                return f"score_psi {value:.3f} > {rule.max_score_psi:g} vs the primary"
        return None

    def take(self) -> LoadedModel | None:
        """Remove the candidate (it is being promoted); None when there is none."""
        with self._lock:
            candidate, self.candidate = self.candidate, None
        if candidate is not None:
            self.metrics.release_active.labels(role=self.mode).set(0)
        return candidate

    def status(self) -> dict[str, object]:
        candidate = self.candidate
        return {
            "mode": self.mode,
            "candidate_version": candidate.version if candidate else None,
            "share": self.cfg.share if self.mode == "canary" else None,
            "window_requests": len(self._window),
            "stopped": self.stopped,
            "first_failure_at": self.first_failure_at,
            "stopped_at": self.stopped_at,
        }
