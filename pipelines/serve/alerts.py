"""Prometheus alert rules for the server, with thresholds from `serve.alerts`, `serve.drift`
and `serve.feedback`, so the rules file and the config cannot disagree (a test keeps the
shipped conf/serve/alerts.yml equal to what the default config generates)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pipelines.serve.config import ServeConfig

ALERTS_FILE = Path(__file__).resolve().parents[2] / "conf" / "serve" / "alerts.yml"
HEADER = (
    "# Generated from conf/serve/default.yaml by `python -m pipelines.serve --write-alerts "
    "conf/serve/alerts.yml`;\n# edit the thresholds there (serve.alerts, serve.drift), not here.\n"
)


def alert_rules(cfg: ServeConfig) -> dict[str, Any]:
    a, d, w = cfg.alerts, cfg.drift, cfg.alerts.window
    predict = f"sum(rate(serve_requests_total[{w}]))"
    rules = [
        {
            "alert": "ServeP99LatencyHigh",
            "expr": (
                "histogram_quantile(0.99, sum by (le) "
                f"(rate(serve_request_latency_seconds_bucket[{w}]))) > {a.p99_latency_ms / 1000:g}"
            ),
            "for": a.for_duration,
            "labels": {"severity": "page"},
            "annotations": {
                "summary": f"/predict p99 latency above {a.p99_latency_ms:g} ms",
                "description": f"p99 over the last {w} is {{{{ $value }}}} s",
            },
        },
        {
            "alert": "ServeErrorRateHigh",
            "expr": (
                f'sum(rate(serve_requests_total{{code=~"5.."}}[{w}])) / {predict} '
                f"> {a.error_rate:g}"
            ),
            "for": a.for_duration,
            "labels": {"severity": "page"},
            "annotations": {
                "summary": f"more than {a.error_rate:.2%} of /predict answers are 5xx",
                "description": "errors by kind: serve_errors_total",
            },
        },
        {
            "alert": "ServeBadRequestRateHigh",
            "expr": (
                f'sum(rate(serve_requests_total{{code=~"4.."}}[{w}])) / {predict} '
                f"> {a.bad_request_rate:g}"
            ),
            "for": a.for_duration,
            "labels": {"severity": "ticket"},
            "annotations": {
                "summary": f"more than {a.bad_request_rate:.0%} of /predict requests rejected",
                "description": "a client may be sending another schema: serve_errors_total",
            },
        },
        {
            "alert": "ServeFeatureDriftWarning",
            "expr": f"serve_feature_psi > {d.psi_warning:g}",
            "for": a.for_duration,
            "labels": {"severity": "ticket"},
            "annotations": {
                "summary": "input feature {{ $labels.feature }} is shifting (PSI {{ $value }})",
                "description": f"PSI over the last {d.window_rows} served rows vs the train split",
            },
        },
        {
            "alert": "ServeFeatureDrift",
            "expr": f"serve_feature_psi > {d.psi_alert:g}",
            "for": a.for_duration,
            "labels": {"severity": "page"},
            "annotations": {
                "summary": "input feature {{ $labels.feature }} has drifted (PSI {{ $value }})",
                "description": (
                    f"PSI over the last {d.window_rows} served rows vs the train split; "
                    "consider retraining"
                ),
            },
        },
        {
            "alert": "ServeOnlineQualityLow",
            "expr": (
                "serve_online_quality < on (version, metric) "
                f"(serve_card_quality - {cfg.feedback.quality_margin:g})"
            ),
            "for": a.for_duration,
            "labels": {"severity": "ticket"},
            "annotations": {
                "summary": (
                    "{{ $labels.version }}: online {{ $labels.metric }} {{ $value }} is more "
                    f"than {cfg.feedback.quality_margin:g} below the model card's test figure"
                ),
                "description": (
                    f"over the last {cfg.feedback.window} labelled rows (POST /feedback)"
                ),
            },
        },
        {
            "alert": "ServeCpuHigh",
            "expr": f"rate(process_cpu_seconds_total[{w}]) / serve_cpu_cores > {a.cpu_share:g}",
            "for": a.for_duration,
            "labels": {"severity": "ticket"},
            "annotations": {
                "summary": f"the server uses more than {a.cpu_share:.0%} of its cores",
                "description": "CPU share over the last window: {{ $value }}",
            },
        },
        {
            "alert": "ServeMemoryHigh",
            "expr": (
                f"process_resident_memory_bytes / serve_memory_limit_bytes > {a.memory_share:g}"
            ),
            "for": a.for_duration,
            "labels": {"severity": "page"},
            "annotations": {
                "summary": f"resident memory above {a.memory_share:.0%} of the limit",
                "description": "share of the cgroup limit (else RAM): {{ $value }}",
            },
        },
        {
            "alert": "ServeNotReady",
            "expr": "serve_ready == 0 or absent(serve_ready)",
            "for": a.for_duration,
            "labels": {"severity": "page"},
            "annotations": {"summary": "the model server is down or has no model loaded"},
        },
    ]
    return {"groups": [{"name": "model-serving", "rules": rules}]}


def render(cfg: ServeConfig) -> str:
    return HEADER + yaml.safe_dump(alert_rules(cfg), sort_keys=False, width=100)


def write_alerts(cfg: ServeConfig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(cfg))
    return path
