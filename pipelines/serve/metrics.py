"""Prometheus metrics of one server, in their own registry (not the client's global one), so
several servers in one process (the tests) never share counters."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pipelines.serve.drift import DriftMonitor
from pipelines.serve.resources import register_resources

# /predict is a sub-millisecond affair when idle and tens of ms under load on 2 cores: dense
# buckets around the 50 ms p99 objective so histogram_quantile can see it crossed
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075,
    0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip
# fraud-style scores pile up near 0: finer buckets there
SCORE_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def _size_buckets(max_batch: int) -> tuple[float, ...]:
    sizes, size = [], 1
    while size < max_batch:
        sizes.append(float(size))
        size *= 2
    return (*sizes, float(max_batch), float(max_batch * 4))


class DriftCollector(Collector):
    """Per-feature PSI computed at scrape time from the current model's drift window; no PSI
    series until the window holds `min_rows` rows (a handful of rows always reads as drift)."""

    def __init__(self, monitor: Callable[[], DriftMonitor | None], min_rows: int) -> None:
        self.monitor, self.min_rows = monitor, min_rows

    def collect(self) -> Iterator[Metric]:
        monitor = self.monitor()
        rows = GaugeMetricFamily(
            "serve_drift_window_rows", "Served rows in the drift window (since the last reload)"
        )
        rows.add_metric([], monitor.rows if monitor else 0)
        yield rows
        if monitor is None or monitor.rows < self.min_rows:
            return
        values = monitor.psi()
        per_feature = GaugeMetricFamily(
            "serve_feature_psi",
            "Population stability index of each input feature, drift window vs train split",
            labels=["feature"],
        )
        for name, value in values.items():
            per_feature.add_metric([name], value)
        yield per_feature
        worst = GaugeMetricFamily("serve_drift_max_psi", "Largest per-feature PSI")
        worst.add_metric([], max(values.values(), default=math.nan))
        yield worst


class ServeMetrics:
    def __init__(self, max_batch: int) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "serve_requests", "/predict answers by HTTP status", ["code"], registry=r
        )
        self.request_latency = Histogram(
            "serve_request_latency_seconds",
            "/predict time in the server: body read to answer ready",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_latency = Histogram(
            "serve_batch_latency_seconds",
            "One inference over a batch (ONNX Runtime run and score split)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_rows = Histogram(
            "serve_batch_rows", "Rows per inference", buckets=_size_buckets(max_batch), registry=r
        )
        self.batch_requests = Histogram(
            "serve_batch_requests",
            "Requests sharing one inference",
            buckets=_size_buckets(max_batch),
            registry=r,
        )
        self.queue_rows = Gauge("serve_queue_rows", "Rows waiting to be scored", registry=r)
        self.queue_requests = Gauge(
            "serve_queue_requests", "Requests waiting to be scored", registry=r
        )
        self.errors = Counter(
            "serve_errors", "Failed /predict and /admin requests by kind", ["kind"], registry=r
        )
        self.scores = Histogram(
            "serve_prediction_score", "Scores returned", buckets=SCORE_BUCKETS, registry=r
        )
        self.rows = Counter("serve_rows_scored", "Rows scored", registry=r)
        self.model_info = Gauge(
            "serve_model_info",
            "The model being served (value 1)",
            ["version", "model", "variant"],
            registry=r,
        )
        self.reloads = Counter(
            "serve_model_reloads", "Model reloads by result", ["result"], registry=r
        )
        self.admin_refusals = Counter(
            "serve_admin_refusals",
            "Refused /admin requests by reason: off (no token configured), no_credential, "
            "wrong_token, no_export_root, outside_root",
            ["reason"],
            registry=r,
        )
        self.ready = Gauge("serve_ready", "1 when the model is loaded and warmed", registry=r)
        self.gpu = register_resources(r)  # process CPU, memory, fds, threads; NVML GPUs
        # per version: the primary, a canary and a shadow side by side (serve.release)
        self.version_requests = Counter(
            "serve_version_requests",
            "/predict requests scored per model version and role (primary, canary, shadow), "
            "by outcome (ok, error)",
            ["version", "role", "outcome"],
            registry=r,
        )
        self.version_latency, self.version_scores = (
            Histogram(name, doc, ["version", "role"], buckets=buckets, registry=r)
            for name, doc, buckets in (
                ("serve_version_latency_seconds", "Queue and inference time per model version "
                 "and role", LATENCY_BUCKETS),
                ("serve_version_score", "Scores (a multi-class model's top probability) per "
                 "model version and role", SCORE_BUCKETS),
            )
        )  # fmt: skip
        self.feedback = Counter(
            "serve_feedback",
            "POST /feedback answers by result: joined, or the error kind (unknown_request, "
            "wrong_label, ...)",
            ["result"],
            registry=r,
        )
        self.release_active = Gauge(
            "serve_release_active", "1 while a canary or shadow candidate is served", ["role"],
            registry=r,
        )  # fmt: skip
        self.rollbacks = Counter(
            "serve_release_rollbacks",
            "Candidates stopped by the rollback rule, by reason: error_rate, p99_latency, "
            "score_psi",
            ["reason"],
            registry=r,
        )

    def add_drift(self, monitor: Callable[[], DriftMonitor | None], min_rows: int) -> None:
        self.registry.register(DriftCollector(monitor, min_rows))

    def set_model(self, version: str, model: str, variant: str) -> None:
        self.model_info.clear()
        self.model_info.labels(version=version, model=model, variant=variant).set(1)
