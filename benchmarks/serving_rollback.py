"""Rollback time: how long a canary that fails on a share of its inputs keeps answering,
measured from its first failing request, under closed-loop load on loopback:

    python benchmarks/serving_rollback.py [--clients 8] [--repeats 3] [--fail-share 0.3] [--record]

The primary is the tiny text export folder the tests build (tests/test_text_export_folder.py);
the canary is the same folder with its token embedding cut short, so every text holding a
token past the cut fails in ONNX Runtime (a Gather out of bounds) as a model that breaks on
a share of its inputs does; the cut is placed so that `--fail-share` of the request texts
fail. The server runs with the default rollback rule (serve.release.* defaults: share 0.05,
window 200, max_error_rate 0.02) in its own process (`python -m pipelines.serve`); each repeat
is a fresh server. Figures per repeat:
- rollback_s: from the moment the client sent the first request that failed to the server's
  stop of the canary (its `release.stopped_at` in GET /model; one machine, one wall clock);
- server_s: the same from the server's record of that first failure (`first_failure_at`);
- client_errors: the failed answers clients got, against the rule's bound
  floor(max_error_rate x window) + 1;
- requests_between: answers sent from the first failure to the last failed one."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from results_file import add_record_flag, write_results  # noqa: E402
from serving import Server, exchange, http_requests  # noqa: E402
from serving_modalities import text_bodies  # noqa: E402


def broken_canary(folder: Path, into: Path, texts: list[str], fail_share: float) -> int:
    """`folder` copied to `into` with the token embedding cut to the first `cut` rows, `cut`
    chosen so that `fail_share` of `texts` hold a token id >= cut; returns the cut."""
    import hashlib

    import onnx
    from onnx import numpy_helper
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    vocab = tokenizer.get_vocab_size()
    highest = np.array([max(e.ids) for e in tokenizer.encode_batch(texts)])
    cut = int(np.quantile(highest, 1 - fail_share))
    shutil.copytree(folder, into)
    graph = onnx.load(str(into / "model.onnx"))
    gathered = {n.input[0] for n in graph.graph.node if n.op_type == "Gather"}
    for i, init in enumerate(graph.graph.initializer):
        if init.name in gathered and init.dims and init.dims[0] == vocab:
            table = numpy_helper.to_array(init)[:cut]
            graph.graph.initializer[i].CopyFrom(numpy_helper.from_array(table, init.name))
            break
    else:
        raise SystemExit(f"error: {folder / 'model.onnx'}: no Gather over a [{vocab}, ...] table")
    onnx.save(graph, str(into / "model.onnx"))
    card = json.loads((into / "model_card.json").read_text())
    digest = hashlib.sha256((into / "model.onnx").read_bytes()).hexdigest()
    card.setdefault("sha256", {})["model.onnx"] = digest
    card["version"] = "broken-canary"
    (into / "model_card.json").write_text(json.dumps(card))
    return cut


async def _client(
    host: str, port: int, requests: list[bytes], offset: int, stop_at: float, log: list
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    sent = 0
    try:
        while time.monotonic() < stop_at:
            started = time.time()
            head = await exchange(reader, writer, requests[(offset + sent) % len(requests)])
            sent += 1
            log.append((started, time.time(), int(head[9:12])))
    finally:
        writer.close()


async def _load(server: Server, requests: list[bytes], clients: int, seconds: float) -> list:
    log: list[tuple[float, float, int]] = []
    stop_at = time.monotonic() + seconds
    await asyncio.gather(
        *(_client(server.host, server.port, requests, i * 7, stop_at, log) for i in range(clients))
    )
    return sorted(log)


def one_rollback(
    primary: Path, canary: Path, requests: list[bytes], clients: int, seconds: float
) -> dict[str, Any]:
    server = Server(primary, ["serve.release.mode=canary", f"serve.release.export_dir={canary}"])
    try:
        log = asyncio.run(_load(server, requests, clients, seconds))
        status = json.loads(urllib.request.urlopen(f"{server.url}/model", timeout=10).read())
    finally:
        server.stop()
    release = status["release"]
    failed = [entry for entry in log if entry[2] != 200]
    if release["stopped_at"] is None or not failed:
        raise SystemExit(f"error: the canary was not stopped in {seconds} s: {release}")
    first_sent = failed[0][0]
    return {
        "requests": len(log),
        "throughput_rps": len(log) / seconds,
        "client_errors": len(failed),
        "error_codes": sorted({code for *_, code in failed}),
        "stopped": release["stopped"],
        "rollback_s": release["stopped_at"] - first_sent,
        "server_s": release["stopped_at"] - release["first_failure_at"],
        "last_error_received_s": failed[-1][1] - first_sent,
        "requests_between": sum(first_sent <= sent <= failed[-1][0] for sent, _, _ in log),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8, help="closed-loop clients")
    parser.add_argument("--repeats", type=int, default=3, help="fresh servers, one rollback each")
    parser.add_argument("--seconds", type=float, default=6.0, help="load per repeat")
    parser.add_argument("--fail-share", type=float, default=0.3, help="texts the canary fails")
    add_record_flag(parser)
    args = parser.parse_args()
    from pipelines.serve.config import ReleaseConfig, RollbackConfig
    from tests.test_text_export_folder import export_text_folder

    rule = RollbackConfig()
    bodies = text_bodies()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        primary = export_text_folder(work)["folder"]
        texts = [t for body in bodies for t in body["texts"]]
        cut = broken_canary(primary, work / "canary", texts, args.fail_share)
        requests = http_requests(bodies, "127.0.0.1")
        runs = []
        for _ in range(args.repeats):
            run = one_rollback(primary, work / "canary", requests, args.clients, args.seconds)
            print(json.dumps(run), flush=True)
            runs.append(run)
    results = {
        "command": "python benchmarks/serving_rollback.py " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "clients": args.clients,
        "fail_share": args.fail_share,
        "embedding_cut": cut,
        "rule": {
            "share": ReleaseConfig().share,
            "window_requests": rule.window_requests,
            "max_error_rate": rule.max_error_rate,
            "errors_allowed": int(np.floor(rule.max_error_rate * rule.window_requests)) + 1,
        },
        "runs": runs,
    }
    write_results("serving_rollback", results, args.record)


if __name__ == "__main__":
    main()
