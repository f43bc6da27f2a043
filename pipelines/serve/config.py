"""The server's settings: `conf/serve/default.yaml` merged onto these dataclasses, then
range-checked, so a typo or an out-of-range value stops with one line naming the key."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pipelines.errors import PipelineError

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "conf" / "serve" / "default.yaml"


@dataclass
class DriftConfig:
    window_rows: int = 5000
    """The sliding window of served rows compared with the train split (at least 10)."""
    min_rows: int = 500
    """PSI is not reported on fewer rows, 1 to window_rows: small samples read as drift."""
    psi_warning: float = 0.1
    """PSI above which a feature reads as shifting (> 0; conventional reading: < 0.1 stable,
    0.1-0.25 shifting)."""
    psi_alert: float = 0.25
    """PSI above which the population has moved (at least psi_warning)."""


@dataclass
class AlertsConfig:
    p99_latency_ms: float = 50.0
    """ServeP99LatencyHigh fires when /predict's p99 exceeds this (> 0)."""
    error_rate: float = 0.01
    """ServeErrorRateHigh fires above this 5xx share of /predict requests, in (0, 1)."""
    bad_request_rate: float = 0.2
    """ServeBadRequestRateHigh fires above this 4xx share (a client sending the wrong schema), in
    (0, 1)."""
    cpu_share: float = 0.9
    """ServeCpuHigh fires when the process uses more than this share of the cores it may run
    on (serve_cpu_cores), in (0, 1]."""
    memory_share: float = 0.85
    """ServeMemoryHigh fires when its resident memory exceeds this share of the memory it may
    use (serve_memory_limit_bytes: the cgroup limit, else RAM), in (0, 1]."""
    window: str = "5m"
    """PromQL range the rates and quantiles are taken over (a Prometheus duration: 30s, 5m, 1h)."""
    for_duration: str = "5m"
    """How long a condition holds before the alert fires (a Prometheus duration)."""


@dataclass
class TextInputConfig:
    """Requests to a text export folder: {"texts": ["..."]}."""

    on_too_long: str = "truncate"
    """A text longer than the tokenizer's max_length: `truncate` scores its first max_length
    tokens (as training did) and names it in the answer's `truncated` list and the
    `x-truncated` header; `reject` answers 422 naming the text."""


# Pillow's 8-bit modes, which convert("RGB") maps without loss of meaning; 16/32-bit integer
# and float modes (I;16, I, F) would be clipped to 8 bits, which training never did
IMAGE_MODES = ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "La"]


@dataclass
class ImageInputConfig:
    """Requests to an image export folder: base64 images in JSON, or multipart uploads."""

    max_pixels: int = 25_000_000
    """Largest width x height decoded (>= 1), read from the image header before decoding, so a
    decompression bomb (a few KB expanding to gigabytes) is a 413, never a decode."""
    modes: list[str] = field(default_factory=lambda: list(IMAGE_MODES))
    """Pillow image modes accepted (others: 422 wrong_mode); each is converted to RGB as the
    card's preprocessing says."""


@dataclass
class RollbackConfig:
    """When a canary (or shadow) is stopped: judged after each of its requests over its last
    `window_requests` requests."""

    window_requests: int = 200
    """The candidate's last requests the rule looks at (>= 10)."""
    min_requests: int = 50
    """p99 latency and score PSI are judged once the window holds this many requests (1 to
    window_requests); errors are counted from the first request."""
    max_error_rate: float = 0.02
    """Stop when the candidate's failed requests in the window exceed this share of
    window_requests, in (0, 1): at most floor(share x window_requests) + 1 clients ever get a
    canary's error."""
    max_p99_ms: float = 250.0
    """Stop when the candidate's p99 latency over the window exceeds this many ms (> 0)."""
    max_score_psi: float = 0.25
    """Stop when the PSI of the candidate's scores (top probability) against the primary's
    recent scores exceeds this (> 0)."""


@dataclass
class ReleaseConfig:
    """A second export folder served beside the primary one: as a canary answering a share of
    requests, or as a shadow scoring a copy of the traffic without answering it."""

    mode: str = "off"
    """off, canary or shadow."""
    export_dir: str | None = None
    """The candidate's export folder (same modality as the primary); required unless off."""
    share: float = 0.05
    """Canary: the share of requests it answers, in (0, 1]."""
    sticky_header: str = "x-request-key"
    """Canary: a request carrying this header goes to the version its value hashes to, so one
    user keeps one version; without it a request is routed at random."""
    rollback: RollbackConfig = field(default_factory=RollbackConfig)
    """The rule that stops the candidate (and logs why)."""


@dataclass
class FeedbackConfig:
    """POST /feedback: true labels joined to the scores the server answered with."""

    retention_s: float = 3600.0
    """How long an answer waits for its label (> 0); older ones are dropped unlabelled."""
    max_pending: int = 100_000
    """Answers kept waiting at most (>= 1), oldest dropped first: the memory bound."""
    window: int = 1000
    """Labelled rows per model version the online figures are computed over (>= 10)."""
    min_labels: int = 100
    """No online figure on fewer labelled rows (1 to window): a few labels say little."""
    quality_margin: float = 0.05
    """ServeOnlineQualityLow fires when an online figure falls more than this below the model
    card's test figure (> 0)."""


@dataclass
class AdminConfig:
    """/admin/*: off unless a bearer token is configured; the token itself never sits in a
    config file (they get committed, copied and logged), only where it names it."""

    token_env: str = "SERVE_ADMIN_TOKEN"
    """Environment variable holding the bearer token (at least 16 characters)."""
    token_file: str | None = None
    """A file holding the token (a mounted secret); wins over token_env when set."""
    export_root: str | None = None
    """POST /admin/reload {"export_dir": ...} loads only folders inside this one (after
    resolving `..` and symlinks); unset: only the folder being served reloads."""


@dataclass
class ServeConfig:
    export_dir: str = "export"
    """The export folder served (`--export` overrides it)."""
    host: str = "127.0.0.1"
    """Address the server listens on (keep loopback unless guarded upstream)."""
    port: int = 8000
    """Port to listen on, 0-65535; 0 picks a free port (the printed URL tells which)."""
    batching: bool = True
    """Dynamic batching; false: one inference per request (the benchmark's baseline)."""
    max_batch: int = 64
    """Rows per inference, 1-65536."""
    max_wait_ms: float = 0.0
    """Longest a request waits for others to share its batch, 0-1000 ms. 0 still batches: what
    queues while one inference runs is the next batch. Measured (benchmarks/serving.py): waiting 2
    ms cuts 1-8 closed-loop clients' throughput 2-5x; at 64 clients it fills batches (48-59 vs 34
    rows) for -8% to +20% throughput over four runs."""
    max_queue_rows: int = 8192
    """Rows waiting to be scored, at least max_rows_per_request; beyond this /predict answers 503
    instead of queueing forever."""
    max_rows_per_request: int = 1024
    """Rows one /predict request may carry (>= 1; more: 413)."""
    max_body_bytes: int = 1_048_576
    """Largest request body (>= 64; more: 413)."""
    threads: int = 1
    """ONNX Runtime intra-op threads, 0 (ORT's choice) to 256; 1 by default: the event loop needs
    the other core."""
    inference_thread: bool = True
    """false: run each inference on the event loop (no thread hand-off, but nothing else is served
    while it runs); true keeps the loop accepting requests during an inference."""
    warmup_rounds: int = 3
    """Inferences run before /ready turns 200 (>= 0)."""
    allow_reload: bool = True
    """POST /admin/reload, when an admin token is configured (serve.admin); SIGHUP reloads
    regardless."""
    log_level: str = "warning"
    """uvicorn's log level (critical, error, warning, info, debug)."""
    admin: AdminConfig = field(default_factory=AdminConfig)
    """The admin API's credential and the folders it may reload."""
    drift: DriftConfig = field(default_factory=DriftConfig)
    """Input drift monitoring: PSI of each served feature against the train split."""
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    """Thresholds of the Prometheus alert rules written to conf/serve/alerts.yml."""
    feedback: FeedbackConfig = field(default_factory=FeedbackConfig)
    """Label feedback and the online quality figures per model version."""
    release: ReleaseConfig = field(default_factory=ReleaseConfig)
    """Canary and shadow releases of a second export folder, with automatic rollback."""
    text: TextInputConfig = field(default_factory=TextInputConfig)
    """How a text export folder's requests are read (serve.text.on_too_long)."""
    image: ImageInputConfig = field(default_factory=ImageInputConfig)
    """How an image export folder's requests are read (size limit, accepted modes)."""


@dataclass
class ServeFile:
    serve: ServeConfig = field(default_factory=ServeConfig)
    """The model server's settings (conf/serve/default.yaml; `python -m pipelines.serve` overrides
    with serve.key=value)."""


LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def _check(ok: bool, source: str, key: str, value: object, expected: str) -> None:
    if not ok:
        raise PipelineError(f"{source}: config key 'serve.{key}' = {value!r}: expected {expected}")


def _check_ranges(c: ServeConfig, source: str) -> None:
    _check(0 <= c.port <= 65535, source, "port", c.port, "0-65535 (0 picks a free port)")
    _check(1 <= c.max_batch <= 65536, source, "max_batch", c.max_batch, "an integer in 1-65536")
    _check(0 <= c.max_wait_ms <= 1000, source, "max_wait_ms", c.max_wait_ms, "0-1000 ms")
    _check(
        c.max_rows_per_request >= 1,
        source,
        "max_rows_per_request",
        c.max_rows_per_request,
        "an integer >= 1",
    )
    _check(
        c.max_queue_rows >= c.max_rows_per_request,
        source,
        "max_queue_rows",
        c.max_queue_rows,
        f">= serve.max_rows_per_request ({c.max_rows_per_request}), or no request fits",
    )
    _check(c.max_body_bytes >= 64, source, "max_body_bytes", c.max_body_bytes, "at least 64")
    _check(0 <= c.threads <= 256, source, "threads", c.threads, "0 (ORT's choice) to 256")
    _check(c.warmup_rounds >= 0, source, "warmup_rounds", c.warmup_rounds, "an integer >= 0")
    levels = ", ".join(LOG_LEVELS)
    _check(c.log_level in LOG_LEVELS, source, "log_level", c.log_level, f"one of {levels}")
    _check(
        c.admin.token_env.isidentifier(),
        source,
        "admin.token_env",
        c.admin.token_env,
        "an environment variable name",
    )
    d = c.drift
    _check(d.window_rows >= 10, source, "drift.window_rows", d.window_rows, "an integer >= 10")
    _check(
        1 <= d.min_rows <= d.window_rows,
        source,
        "drift.min_rows",
        d.min_rows,
        f"1 to serve.drift.window_rows ({d.window_rows})",
    )
    _check(d.psi_warning > 0, source, "drift.psi_warning", d.psi_warning, "> 0")
    _check(
        d.psi_alert >= d.psi_warning,
        source,
        "drift.psi_alert",
        d.psi_alert,
        f">= serve.drift.psi_warning ({d.psi_warning})",
    )
    _check(
        c.text.on_too_long in ("truncate", "reject"),
        source,
        "text.on_too_long",
        c.text.on_too_long,
        "truncate or reject",
    )
    _check(c.image.max_pixels >= 1, source, "image.max_pixels", c.image.max_pixels, ">= 1")
    _check(
        bool(c.image.modes) and set(c.image.modes) <= set(IMAGE_MODES),
        source,
        "image.modes",
        c.image.modes,
        f"a non-empty list of {', '.join(IMAGE_MODES)}",
    )
    f = c.feedback
    _check(f.retention_s > 0, source, "feedback.retention_s", f.retention_s, "> 0")
    _check(f.max_pending >= 1, source, "feedback.max_pending", f.max_pending, ">= 1")
    _check(f.window >= 10, source, "feedback.window", f.window, "an integer >= 10")
    _check(1 <= f.min_labels <= f.window, source, "feedback.min_labels", f.min_labels,
           f"1 to serve.feedback.window ({f.window})")  # fmt: skip
    _check(f.quality_margin > 0, source, "feedback.quality_margin", f.quality_margin, "> 0")
    r, rb = c.release, c.release.rollback
    _check(r.mode in ("off", "canary", "shadow"), source, "release.mode", r.mode,
           "off, canary or shadow")  # fmt: skip
    _check(
        r.mode == "off" or bool(r.export_dir),
        source,
        "release.export_dir",
        r.export_dir,
        f"an export folder (serve.release.mode = {r.mode})",
    )
    _check(0 < r.share <= 1, source, "release.share", r.share, "in (0, 1]")
    _check(
        rb.window_requests >= 10,
        source,
        "release.rollback.window_requests",
        rb.window_requests,
        "an integer >= 10",
    )
    _check(
        1 <= rb.min_requests <= rb.window_requests,
        source,
        "release.rollback.min_requests",
        rb.min_requests,
        f"1 to serve.release.rollback.window_requests ({rb.window_requests})",
    )
    _check(0 < rb.max_error_rate < 1, source, "release.rollback.max_error_rate",
           rb.max_error_rate, "in (0, 1)")  # fmt: skip
    _check(rb.max_p99_ms > 0, source, "release.rollback.max_p99_ms", rb.max_p99_ms, "> 0")
    _check(rb.max_score_psi > 0, source, "release.rollback.max_score_psi", rb.max_score_psi,
           "> 0")  # fmt: skip
    a = c.alerts
    _check(a.p99_latency_ms > 0, source, "alerts.p99_latency_ms", a.p99_latency_ms, "> 0")
    _check(0 < a.error_rate < 1, source, "alerts.error_rate", a.error_rate, "in (0, 1)")
    _check(
        0 < a.bad_request_rate < 1,
        source,
        "alerts.bad_request_rate",
        a.bad_request_rate,
        "in (0, 1)",
    )
    _check(0 < a.cpu_share <= 1, source, "alerts.cpu_share", a.cpu_share, "in (0, 1]")
    _check(0 < a.memory_share <= 1, source, "alerts.memory_share", a.memory_share, "in (0, 1]")
    for key in ("window", "for_duration"):
        value = getattr(a, key)
        _check(
            isinstance(value, str) and value[:-1].isdigit() and value[-1:] in "smhd",
            source,
            f"alerts.{key}",
            value,
            "a Prometheus duration such as 30s, 5m or 1h",
        )


def load_serve_config(
    path: str | Path = DEFAULT_CONFIG, overrides: list[str] | None = None
) -> ServeConfig:
    """Read the YAML (top-level key `serve`), apply `serve.key=value` overrides, validate."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: serve config not found")
    source = str(path)
    try:
        raw = OmegaConf.load(path)
        if overrides:
            raw = OmegaConf.merge(raw, OmegaConf.from_dotlist(overrides))
    except Exception as err:  # YAML syntax or a malformed override: say which, in one line
        reason = " ".join(str(err).split())
        raise PipelineError(f"{source}: not a valid serve config: {reason}") from None
    if OmegaConf.select(raw, "serve.admin.token") is not None:
        raise PipelineError(
            f"{source}: config key 'serve.admin.token': a token is never read from the config; "
            "put it in the environment variable serve.admin.token_env names or in the file "
            "serve.admin.token_file names"
        )
    try:
        merged = OmegaConf.merge(OmegaConf.structured(ServeFile), raw)
        typed: ServeFile = OmegaConf.to_object(merged)  # type: ignore[assignment]
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "?"
        reason = str(err).splitlines()[0]
        raise PipelineError(f"{source}: config key '{key}': {reason}") from None
    _check_ranges(typed.serve, source)
    return typed.serve
