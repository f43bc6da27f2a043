"""Serving pieces that need no model: config validation, the alert rules file, the drift
reference and PSI window, request parsing, and the batcher on a stand-in model."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipelines.drift_reference import bin_edges, psi, reference_profile
from pipelines.errors import PipelineError
from pipelines.serve.alerts import ALERTS_FILE, alert_rules, render
from pipelines.serve.batching import Batcher, QueueFull, ScoringError
from pipelines.serve.config import DEFAULT_CONFIG, load_serve_config
from pipelines.serve.drift import DriftMonitor
from pipelines.serve.inputs.tabular import TabularInput
from pipelines.serve.metrics import ServeMetrics
from pipelines.serve.requests import BadRequest, parse_json, rows_matrix


def test_the_default_config_loads() -> None:
    cfg = load_serve_config()
    assert cfg.max_batch >= 1 and cfg.export_dir == "export"


@pytest.mark.parametrize(
    ("override", "names"),
    [
        ("serve.max_bach=8", ["'serve.max_bach'"]),
        ("serve.max_batch=0", ["'serve.max_batch'", "0"]),
        ("serve.max_wait_ms=-1", ["'serve.max_wait_ms'", "-1"]),
        ("serve.port=70000", ["'serve.port'", "70000"]),
        ("serve.port=http", ["'serve.port'", "http"]),
        ("serve.max_queue_rows=10", ["'serve.max_queue_rows'", "max_rows_per_request"]),
        ("serve.drift.min_rows=100000", ["'serve.drift.min_rows'", "window_rows"]),
        ("serve.drift.psi_alert=0.01", ["'serve.drift.psi_alert'", "psi_warning"]),
        ("serve.alerts.error_rate=2", ["'serve.alerts.error_rate'"]),
        ("serve.alerts.window=5min", ["'serve.alerts.window'", "5min"]),
        ("serve.log_level=loud", ["'serve.log_level'", "loud", "warning"]),
    ],
)
def test_a_bad_key_or_value_fails_in_one_line_naming_the_key(
    override: str, names: list[str]
) -> None:
    with pytest.raises(PipelineError) as err:
        load_serve_config(overrides=[override])
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(DEFAULT_CONFIG))
    for name in names:
        assert name in message, message


def test_a_config_file_that_is_not_yaml_is_named(tmp_path: Path) -> None:
    path = tmp_path / "serve.yaml"
    path.write_text("serve: [unclosed\n")
    with pytest.raises(PipelineError, match="serve.yaml: not a valid serve config"):
        load_serve_config(path)


def test_the_shipped_alert_rules_match_the_default_config() -> None:
    assert ALERTS_FILE.read_text() == render(load_serve_config()), (
        "regenerate: python -m pipelines.serve --write-alerts conf/serve/alerts.yml"
    )


def test_alert_thresholds_come_from_config() -> None:
    cfg = load_serve_config(
        overrides=["serve.alerts.p99_latency_ms=20", "serve.drift.psi_alert=0.4"]
    )
    rules = {r["alert"]: r for r in alert_rules(cfg)["groups"][0]["rules"]}
    assert rules["ServeP99LatencyHigh"]["expr"].endswith("> 0.02")
    assert rules["ServeFeatureDrift"]["expr"] == "serve_feature_psi > 0.4"
    assert yaml.safe_load(render(cfg)) == alert_rules(cfg)


def test_bins_of_a_flag_are_its_values_and_of_a_continuous_feature_its_deciles() -> None:
    rng = np.random.default_rng(0)
    assert bin_edges(np.array([0.0, 1.0, 1.0, 0.0]), 10) == [0.5]
    assert bin_edges(np.full(50, 3.0), 10) == []
    edges = bin_edges(rng.normal(size=10_000), 10)
    assert len(edges) == 9 and edges == sorted(edges)


def test_a_constant_or_mostly_one_value_feature_keeps_that_value_in_a_bin_of_its_own() -> None:
    """Every training image of one size, a rate that is 0 for nearly every English text: the
    profile's bins still tell traffic off that value from traffic on it."""
    rng = np.random.default_rng(2)
    size = np.full(500, 48.0)
    mostly_zero = np.where(rng.random(500) < 0.95, 0.0, rng.random(500) * 0.02)
    profile = reference_profile(np.column_stack([size, mostly_zero]), ["width", "non_ascii"])
    width, non_ascii = (profile["features"][name] for name in ("width", "non_ascii"))
    assert width["counts"] == [0, 500, 0]  # below, exactly 48, above
    assert non_ascii["counts"][list(np.array(non_ascii["edges"]) > 0).index(True)] >= 450
    monitor = DriftMonitor(profile, ["width", "non_ascii"], window_rows=200)
    like_train = np.where(rng.random(200) < 0.95, 0.0, rng.random(200) * 0.02)
    monitor.observe(np.column_stack([np.full(200, 48.0), like_train]))
    assert max(monitor.psi().values()) < 0.1
    monitor.observe(np.column_stack([np.full(200, 64.0), np.full(200, 0.2)]))
    shifted = monitor.psi()
    assert shifted["width"] > 1.0 and shifted["non_ascii"] > 1.0


def test_psi_window_reads_near_zero_on_the_reference_population_and_high_on_a_shift() -> None:
    rng = np.random.default_rng(1)
    train = np.column_stack([rng.normal(size=20_000), rng.integers(0, 2, 20_000)])
    profile = reference_profile(train, ["amount", "flag"])
    monitor = DriftMonitor(profile, ["amount", "flag"], window_rows=2000)
    for _ in range(3):  # more rows than the window: only the last 2000 count
        monitor.observe(np.column_stack([rng.normal(size=1000), rng.integers(0, 2, 1000)]))
    assert monitor.rows == 2000
    calm = monitor.psi()
    assert calm["amount"] < 0.02 and calm["flag"] < 0.01
    monitor.observe(np.column_stack([rng.normal(1.0, 1.0, 2000), np.ones(2000)]))
    shifted = monitor.psi()
    assert shifted["amount"] > 0.25 and shifted["flag"] > 1.0
    assert psi(np.array([10.0, 10.0]), np.array([10.0, 10.0])) == 0.0


def test_request_parsing_names_the_field() -> None:
    features = ["a", "b"]
    x = rows_matrix({"rows": [{"a": 1, "b": 2.5, "id": "extra keys are ignored"}]}, features, 5)
    assert x.dtype == np.float32 and x.tolist() == [[1.0, 2.5]]
    cases = [
        ({"rows": [{"a": 1}]}, "'rows[0].b': missing"),
        ({"rows": [{"a": 1, "b": [2]}]}, "'rows[0].b': expected a number, got list"),
        ({"rows": [{"a": 1, "b": 2}] * 6}, "6 rows > serve.max_rows_per_request = 5"),
        ([{"a": 1, "b": 2}], "field 'rows': missing"),
    ]
    for payload, reason in cases:
        with pytest.raises(BadRequest, match=reason.replace("[", r"\[").replace("]", r"\]")):
            rows_matrix(payload, features, 5)
    with pytest.raises(BadRequest, match="not UTF-8"):
        parse_json(b"\xff\xfe{")


class _Model:
    """Stands in for a LoadedModel: scores a row as its first feature, records batch sizes."""

    def __init__(self, fail: bool = False) -> None:
        self.batches: list[int] = []
        self.fail = fail
        self.adapter = TabularInput(["a", "b"], "x")  # stacks the requests' rows

    def score(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        x = feeds["x"]
        self.batches.append(len(x))
        if self.fail:
            raise RuntimeError("boom")
        return x[:, 0].copy()


def test_the_batcher_merges_waiting_requests_and_splits_the_answers_back() -> None:
    async def scenario() -> tuple[list, list[int]]:
        model = _Model()
        batcher = Batcher(10, 200, 100, ServeMetrics(10))
        batcher.start()
        xs = [np.full((n, 2), float(i), dtype=np.float32) for i, n in enumerate([3, 3, 3, 3])]
        answers = await asyncio.gather(*(batcher.submit(x, len(x), model) for x in xs))  # type: ignore[arg-type]
        await batcher.stop()
        return answers, model.batches

    answers, batches = asyncio.run(scenario())
    # 10 rows at most: three requests of 3 rows share a batch, the fourth gets the next one
    assert batches == [9, 3]
    for i, answer in enumerate(answers):
        assert answer.scores.tolist() == [float(i)] * 3


def test_the_batcher_fails_every_request_of_a_failed_batch_and_keeps_going() -> None:
    async def scenario() -> tuple[list, np.ndarray]:
        batcher = Batcher(10, 50, 100, ServeMetrics(10))
        batcher.start()
        x = np.ones((2, 2), dtype=np.float32)
        bad = _Model(fail=True)
        failed = await asyncio.gather(
            *(batcher.submit(x, 2, bad) for _ in range(2)),  # type: ignore[arg-type]
            return_exceptions=True,
        )
        ok = await batcher.submit(x, 2, _Model())  # type: ignore[arg-type]
        await batcher.stop()
        return failed, ok.scores

    failed, scores = asyncio.run(scenario())
    assert all(isinstance(f, ScoringError) and "boom" in str(f) for f in failed)
    assert scores.tolist() == [1.0, 1.0]


def test_the_batcher_pushes_back_when_the_queue_is_full() -> None:
    async def scenario() -> tuple[list, list[int]]:
        model = _Model()
        # a long wait keeps the first request queued while the second arrives
        batcher = Batcher(64, 300, 4, ServeMetrics(64))
        batcher.start()
        x = np.ones((3, 2), dtype=np.float32)
        results = await asyncio.gather(
            batcher.submit(x, 3, model),  # type: ignore[arg-type]
            batcher.submit(x, 3, model),  # type: ignore[arg-type]
            return_exceptions=True,
        )
        await batcher.stop()
        return results, model.batches

    (first, second), batches = asyncio.run(scenario())
    assert first.scores.tolist() == [1.0, 1.0, 1.0]
    assert isinstance(second, QueueFull) and "serve.max_queue_rows = 4" in str(second)
    assert batches == [3]


def test_a_taken_port_fails_in_one_line_naming_the_keys(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import socket

    from pipelines.serve.__main__ import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["--port", str(port), "--export", str(tmp_path)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith("error: serve: ") and f"'serve.port' = {port}" in lines[0]


def test_a_token_is_never_taken_from_the_config(tmp_path: Path) -> None:
    path = tmp_path / "serve.yaml"
    path.write_text("serve:\n  admin:\n    token: s3cret-in-a-yaml-file-0123456789\n")
    for attempt in (
        lambda: load_serve_config(path),
        lambda: load_serve_config(overrides=["serve.admin.token=s3cret-on-the-line-0123456"]),
    ):
        with pytest.raises(PipelineError) as err:
            attempt()
        message = str(err.value)
        assert "'serve.admin.token'" in message and "never read from the config" in message
        assert "s3cret" not in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read it"),
        ("", "0 characters"),
        ("short-token\n", "11 characters"),
    ],
)
def test_a_bad_token_file_fails_in_one_line_naming_the_key(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    from pipelines.serve.admin import read_token

    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
    cfg = load_serve_config(overrides=[f"serve.admin.token_file={path}"])
    with pytest.raises(PipelineError) as err:
        read_token(cfg.admin)
    message = str(err.value)
    assert "'serve.admin.token_file'" in message and expected in message and "\n" not in message
    assert "short-token" not in message
