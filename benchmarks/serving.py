"""The model server under load on loopback (run after `dvc repro`, which writes export/):

    python benchmarks/serving.py [--export export] [--seconds 2.5] [--rounds 3] [--soak-seconds 90]
                                 [--record]   # benchmarks/results/, else outputs/benchmarks/

1. Throughput and p50/p99 latency with 1, 8 and 64 concurrent clients (closed loop: each
   client sends its next one-row request when the last is answered) for four server configs:
   dynamic batching on (the default config), on with `max_wait_ms=2`, and two
   ways of one inference per request (on the scoring thread, as batches run; inline on the
   event loop, the cheaper one for a model this small). The modes take turns for --seconds
   each, --rounds times. Server and clients share the machine's cores.
2. The HTTP layer's cost: one client, requests of B rows against the inline one-request-per-
   inference server, vs `session.run` on the same B rows in this process (same ORT threads).
3. A soak: 64 clients for --soak-seconds with batching on; the server's RSS sampled every
   5 s and every non-200 answer counted.

The load client is raw asyncio over keep-alive HTTP/1.1 with pre-built requests, so that as
little of the 2 cores as possible goes to generating load rather than serving it. Every phase
is bounded in time."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from results_file import add_record_flag, write_results  # noqa: E402

from pipelines.io import read_columns  # noqa: E402
from pipelines.runtime import session  # noqa: E402

CLIENTS = (1, 8, 64)
MODES = {
    "batching_on": ["serve.batching=true"],  # the default config: max_batch 64, max_wait_ms 0
    "batching_on_wait_2ms": ["serve.batching=true", "serve.max_wait_ms=2"],
    # one inference per request, on the scoring thread like a batch
    "batching_off": ["serve.batching=false"],
    # one inference per request on the event loop: no thread hand-off, the fastest way to
    # serve without batching on this model (a 64 us inference), so the fairest baseline
    "batching_off_inline": ["serve.batching=false", "serve.inference_thread=false"],
}


class Server:
    """`python -m pipelines.serve` in its own process, as `make serve` starts it."""

    def __init__(self, export: Path, overrides: list[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipelines.serve", "--export", str(export), "--port", "0",
             *overrides],
            cwd=REPO, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("serving "):
            self.proc.kill()
            raise SystemExit(f"error: serving benchmark: server did not start: {line!r}")
        self.url = line.split()[-1]
        host, port = self.url.removeprefix("http://").rsplit(":", 1)
        self.host, self.port = host, int(port)

    def metrics(self) -> dict[str, float]:
        text = urllib.request.urlopen(f"{self.url}/metrics", timeout=10).read().decode()
        values: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values

    def rss_mb(self) -> float:
        return psutil.Process(self.proc.pid).memory_info().rss / 2**20

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def requests_for(x: np.ndarray, features: list[str], rows: int, host: str) -> list[bytes]:
    """Pre-built HTTP/1.1 requests of `rows` rows each, cycling through the test split."""
    bodies = [
        {"rows": [dict(zip(features, map(float, r), strict=True)) for r in x[start : start + rows]]}
        for start in range(0, min(len(x), 512 * rows) - rows + 1, rows)
    ]
    return http_requests(bodies, host)


def http_requests(bodies: list[dict[str, Any]], host: str) -> list[bytes]:
    """Each JSON body as a pre-built HTTP/1.1 POST /predict request."""
    out = []
    for payload in bodies:
        body = json.dumps(payload).encode()
        head = (
            f"POST /predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        out.append(head + body)
    return out


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> bytes:
    """Send one pre-built request and read its whole answer; its head (status at [9:12])."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return head


async def _client(
    host: str, port: int, requests: list[bytes], offset: int, warm_until: float, stop_at: float,
    latencies: list[float], failures: list[int],
) -> int:  # fmt: skip
    reader, writer = await asyncio.open_connection(host, port)
    sent = 0
    try:
        while (now := time.perf_counter()) < stop_at:
            head = await exchange(reader, writer, requests[(offset + sent) % len(requests)])
            sent += 1
            if now >= warm_until:  # requests started in the warm-up second are not counted
                latencies.append(time.perf_counter() - now)
                if head[9:12] != b"200":
                    failures.append(int(head[9:12]))
    finally:
        writer.close()
    return sent


async def _load(
    host: str, port: int, requests: list[bytes], clients: int, seconds: float, warmup: float
) -> tuple[list[float], list[int], float]:
    latencies: list[float] = []
    failures: list[int] = []
    start = time.perf_counter()
    warm_until, stop_at = start + warmup, start + warmup + seconds
    await asyncio.gather(
        *(
            _client(host, port, requests, i * 7, warm_until, stop_at, latencies, failures)
            for i in range(clients)
        )
    )
    measured = time.perf_counter() - warm_until
    return latencies, failures, measured


def run_load(
    server: Server, requests: list[bytes], clients: int, seconds: float, warmup: float = 0.5
) -> dict[str, Any]:
    """One closed-loop run; raw latencies kept so rounds can be pooled."""
    before = server.metrics()
    latencies, failures, measured = asyncio.run(
        _load(server.host, server.port, requests, clients, seconds, warmup)
    )
    after = server.metrics()
    return {
        "latencies": latencies,
        "failures": failures,
        "seconds": measured,
        "batches": after["serve_batch_rows_count"] - before["serve_batch_rows_count"],
        "rows": after["serve_batch_rows_sum"] - before["serve_batch_rows_sum"],
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    latencies = np.concatenate([np.asarray(r["latencies"]) for r in runs]) * 1000
    seconds = sum(r["seconds"] for r in runs)
    batches = sum(r["batches"] for r in runs)
    return {
        "requests": len(latencies),
        "throughput_rps": len(latencies) / seconds,
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
        "mean_batch_rows": sum(r["rows"] for r in runs) / batches if batches else None,
        "errors": sum(len(r["failures"]) for r in runs),
        "per_round_rps": [len(r["latencies"]) / r["seconds"] for r in runs],
    }


def http_overhead(
    export: Path, x: np.ndarray, features: list[str], batches: list[int], seconds: float
) -> list[dict[str, Any]]:
    sess = session(export / "model.onnx", threads=1)
    name = sess.get_inputs()[0].name
    out = []
    server = Server(export, MODES["batching_off_inline"])
    try:
        for rows in batches:
            batch = np.ascontiguousarray(x[:rows])
            for _ in range(50):
                sess.run(None, {name: batch})
            direct = []
            stop = time.perf_counter() + seconds
            while time.perf_counter() < stop:
                t = time.perf_counter()
                sess.run(None, {name: batch})
                direct.append(time.perf_counter() - t)
            point = summarise(
                [run_load(server, requests_for(x, features, rows, server.host), 1, seconds)]
            )
            direct_ms = float(np.median(direct) * 1000)
            out.append(
                {
                    "rows": rows,
                    "direct_ort_p50_ms": direct_ms,
                    "http_p50_ms": point["p50_ms"],
                    "http_overhead_ms": point["p50_ms"] - direct_ms,
                    "http_over_direct": point["p50_ms"] / direct_ms,
                }
            )
    finally:
        server.stop()
    return out


def soak(
    export: Path, x: np.ndarray, features: list[str], seconds: float, clients: int
) -> dict[str, Any]:
    server = Server(export, MODES["batching_on"])
    try:
        requests = requests_for(x, features, 1, server.host)
        samples: list[tuple[float, float]] = []

        async def run() -> tuple[list[float], list[int], float]:
            task = asyncio.ensure_future(
                _load(server.host, server.port, requests, clients, seconds, 0.0)
            )
            start = time.perf_counter()
            while not task.done():
                samples.append((time.perf_counter() - start, server.rss_mb()))
                await asyncio.sleep(5)
            return task.result()

        latencies, failures, measured = asyncio.run(run())
        samples.append((measured, server.rss_mb()))
        counters = server.metrics()
    finally:
        server.stop()
    # the first samples include allocator and ORT arena growth to their working size
    settled = [rss for t, rss in samples if t >= 10] or [samples[-1][1]]
    ms = np.asarray(latencies) * 1000
    return {
        "seconds": measured,
        "clients": clients,
        "requests": len(latencies),
        "throughput_rps": len(latencies) / measured,
        "p99_ms": float(np.percentile(ms, 99)),
        "non_200": len(failures),
        "server_errors_total": sum(
            v for k, v in counters.items() if k.startswith("serve_errors_total")
        ),
        "rss_mb_samples": [[round(t, 1), round(m, 1)] for t, m in samples],
        "rss_mb_at_10s": settled[0],
        "rss_mb_end": samples[-1][1],
        "rss_growth_mb_after_10s": samples[-1][1] - settled[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", default="export", help="export folder to serve")
    parser.add_argument(
        "--rows", default="data/clean/test.arrow", help="request rows (the test split)"
    )
    parser.add_argument("--seconds", type=float, default=2.5, help="measured seconds per turn")
    parser.add_argument("--rounds", type=int, default=3, help="turns per mode and client count")
    parser.add_argument("--soak-seconds", type=float, default=90.0)
    add_record_flag(parser)
    args = parser.parse_args()
    export = Path(args.export).resolve()
    card = json.loads((export / "model_card.json").read_text())
    features = card["inputs"]["features"]
    table = read_columns(Path(args.rows), features)
    x = np.column_stack([table.column(f).to_numpy() for f in features]).astype(np.float32)

    # every mode's server runs at once (idle ones cost nothing) and the modes take turns, a
    # few seconds each, round after round: noise from whatever else shares the 2 cores hits
    # them alike, as benchmarks/inference.py interleaves its variants
    servers = {mode: Server(export, overrides) for mode, overrides in MODES.items()}
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    try:
        requests = requests_for(x, features, 1, "127.0.0.1")
        for _ in range(args.rounds):
            for clients in CLIENTS:
                for mode, server in servers.items():
                    runs.setdefault((mode, clients), []).append(
                        run_load(server, requests, clients, args.seconds)
                    )
    finally:
        for server in servers.values():
            server.stop()
    load = []
    for (mode, clients), mode_runs in runs.items():
        point = {"mode": mode, "clients": clients, **summarise(mode_runs)}
        load.append(point)
        print(json.dumps(point), flush=True)

    def at(mode: str, clients: int) -> dict[str, Any]:
        return next(p for p in load if p["mode"] == mode and p["clients"] == clients)

    overhead = http_overhead(export, x, features, [1, 64], 2 * args.seconds)
    for point in overhead:
        print(json.dumps(point), flush=True)
    soaked = soak(export, x, features, args.soak_seconds, 64)
    print(json.dumps({k: v for k, v in soaked.items() if k != "rss_mb_samples"}), flush=True)

    results = {
        "command": "python benchmarks/serving.py " + " ".join(sys.argv[1:]),
        "cwd": os.getcwd(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "model_version": card.get("version"),
        "load": load,
        "speedup_64_clients": {
            f"{mode}_vs_{base}": at(mode, 64)["throughput_rps"] / at(base, 64)["throughput_rps"]
            for mode in ("batching_on", "batching_on_wait_2ms")
            for base in ("batching_off", "batching_off_inline")
        },
        "p99_ms_64_clients_batching_on": at("batching_on", 64)["p99_ms"],
        "http_overhead": overhead,
        "soak": soaked,
    }
    write_results("serving", results, args.record)
    speedup = results["speedup_64_clients"]
    print(
        f"64 clients: batching on {at('batching_on', 64)['throughput_rps']:.0f} req/s "
        f"(p99 {at('batching_on', 64)['p99_ms']:.1f} ms); vs one inference per request "
        f"{speedup['batching_on_vs_batching_off']:.2f}x (scoring thread), "
        f"{speedup['batching_on_vs_batching_off_inline']:.2f}x (inline); soak RSS growth "
        f"{soaked['rss_growth_mb_after_10s']:+.1f} MB, {soaked['non_200']} errors"
    )


if __name__ == "__main__":
    main()
