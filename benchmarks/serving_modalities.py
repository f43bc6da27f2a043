"""The model server on text and image export folders, under load on loopback:

    python benchmarks/serving_modalities.py [--seconds 2] [--rounds 1] [--shadow-only] [--record]

1. Throughput and p50/p99 latency with 1, 8 and 64 closed-loop clients (one text or one image
   per request), with dynamic batching on (the default config) and off (one inference per
   request), and on with a shadow (the same folder scoring a copy of every request: what a
   shadow release costs), with the method and load client of benchmarks/serving.py. Server
   CPU seconds per request come from its process_cpu_seconds_total.
   `--shadow-only` runs only batching on with and without the shadow (the shadow's cost: CPU
   per request of the two, same run, turns taken side by side) and writes serving_shadow.json.
2. Text padding: one ONNX Runtime call on 64 texts of 1-6 words padded to the longest in
   the batch (what the server does) vs padded to the tokenizer's max_length.

The folders are the tiny untrained ones the tests build (tests/test_text_export_folder.py,
tests/test_image_export_folder.py: hidden size 16, 48 tokens, 32 x 32 images), written to a
temporary directory: what is measured is the server around a small model, not the model."""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from results_file import add_record_flag, write_results  # noqa: E402
from serving import CLIENTS, Server, http_requests, run_load, summarise  # noqa: E402


def modes(folder: Path) -> dict[str, list[str]]:
    return {
        "batching_on": ["serve.batching=true"],
        "batching_off": ["serve.batching=false"],
        "batching_on_shadow": [
            "serve.batching=true",
            "serve.release.mode=shadow",
            f"serve.release.export_dir={folder}",
            # measure the shadow's cost, not the rule: on 2 shared cores 64 clients push the
            # shadow's p99 past the default 250 ms, and the rule stops it (seen in a first run)
            "serve.release.rollback.max_p99_ms=100000",
        ],
    }


def text_bodies() -> list[dict[str, Any]]:
    from pipelines.modalities.text.simulator import NO_DIRT, simulate_tickets

    texts = simulate_tickets(512, seed=1, dirt=NO_DIRT)["text"][:]
    return [{"texts": [t]} for t in texts]


def image_bodies(files: list[Path]) -> list[dict[str, Any]]:
    return [{"images": [base64.b64encode(Path(f).read_bytes()).decode()]} for f in files]


def measure(
    folder: Path, bodies: list[dict[str, Any]], seconds: float, rounds: int, names: list[str]
) -> list[dict[str, Any]]:
    servers = {mode: Server(folder, modes(folder)[mode]) for mode in names}
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    cpu: dict[tuple[str, int], list[float]] = {}
    try:
        requests = http_requests(bodies, "127.0.0.1")
        for _ in range(rounds):
            for clients in CLIENTS:
                for mode, server in servers.items():
                    before = server.metrics()["process_cpu_seconds_total"]
                    run = run_load(server, requests, clients, seconds)
                    # shadow copies still being scored after the run belong to it
                    time.sleep(0.3)
                    spent = server.metrics()["process_cpu_seconds_total"] - before
                    runs.setdefault((mode, clients), []).append(run)
                    cpu.setdefault((mode, clients), []).append(spent)
    finally:
        for server in servers.values():
            server.stop()
    points = []
    for (mode, clients), mode_runs in runs.items():
        point = {"mode": mode, "clients": clients, **summarise(mode_runs)}
        # every request sent, warm-up included, used the CPU measured
        sent = sum(len(r["latencies"]) for r in mode_runs) or 1
        point["cpu_ms_per_request"] = 1000 * sum(cpu[(mode, clients)]) / sent
        point["per_round_cpu_ms_per_request"] = [
            1000 * spent / (len(run["latencies"]) or 1)
            for spent, run in zip(cpu[(mode, clients)], mode_runs, strict=True)
        ]
        points.append(point)
        print(json.dumps(point), flush=True)
    return points


def padding(folder: Path, repeats: int = 50) -> dict[str, Any]:
    """ORT time for 64 texts padded to the batch's longest vs to max_length."""
    from tokenizers import Tokenizer

    from pipelines.modalities.text.export_folder import encode_texts
    from pipelines.modalities.text.simulator import NO_DIRT, simulate_tickets
    from pipelines.runtime import session

    # chat-length messages: each ticket cut to 1-6 words (up to ~30 tokens of this small
    # tokenizer, under its max_length of 48), so lengths in a batch differ
    tickets = simulate_tickets(64, seed=2, dirt=NO_DIRT)["text"][:]
    rng = np.random.default_rng(0)
    texts = [" ".join(t.split()[: int(rng.integers(1, 7))]) for t in tickets]
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    ids, mask, _ = encode_texts(tokenizer, texts)
    full = tokenizer.encode_batch(texts)
    full_ids = np.array([e.ids for e in full], dtype=np.int64)
    full_mask = np.array([e.attention_mask for e in full], dtype=np.int64)
    sess = session(folder / "model.onnx", threads=1)
    out = {"texts": len(texts), "longest_tokens": int(ids.shape[1]),
           "max_length": int(full_ids.shape[1])}  # fmt: skip
    for name, feeds in (
        ("padded_to_longest", {"input_ids": ids, "attention_mask": mask}),
        ("padded_to_max_length", {"input_ids": full_ids, "attention_mask": full_mask}),
    ):
        sess.run(None, feeds)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            sess.run(None, feeds)
            times.append(time.perf_counter() - started)
        out[f"{name}_p50_ms"] = float(np.percentile(times, 50) * 1000)
    print(json.dumps(out), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="measured seconds per turn")
    parser.add_argument("--rounds", type=int, default=1, help="turns per mode and client count")
    parser.add_argument(
        "--shadow-only",
        action="store_true",
        help="only batching on, with and without a shadow (writes serving_shadow.json)",
    )
    add_record_flag(parser)
    args = parser.parse_args()
    names = ["batching_on", "batching_on_shadow"] if args.shadow_only else list(modes(REPO))
    from tests.test_image_export_folder import export_image_folder
    from tests.test_text_export_folder import export_text_folder

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "text").mkdir()
        (work / "image").mkdir()
        text = export_text_folder(work / "text")
        image = export_image_folder(work / "image")
        results = {
            "command": "python benchmarks/serving_modalities.py " + " ".join(sys.argv[1:]),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "text": measure(text["folder"], text_bodies(), args.seconds, args.rounds, names),
            "image": measure(
                image["folder"], image_bodies(image["files"]), args.seconds, args.rounds, names
            ),
        }
        if args.shadow_only:
            results["shadow_cpu_ratio"] = shadow_ratios(results)
        else:
            results["text_padding"] = padding(text["folder"])
    write_results(
        "serving_shadow" if args.shadow_only else "serving_modalities", results, args.record
    )


def shadow_ratios(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """CPU per request with the shadow over without, per modality and client count: over the
    whole run, and per round (the two servers' turns back to back, so a burst of another
    job's load on the shared machine hits one round's pair, not one server)."""
    ratios = {}
    for modality in ("text", "image"):
        points = {(p["mode"], p["clients"]): p for p in results[modality]}
        for clients in CLIENTS:
            shadow, alone = (
                points[("batching_on_shadow", clients)],
                points[("batching_on", clients)],
            )
            rounds = [
                s / a
                for s, a in zip(
                    shadow["per_round_cpu_ms_per_request"],
                    alone["per_round_cpu_ms_per_request"],
                    strict=True,
                )
            ]
            ratios[f"{modality}_{clients}_clients"] = {
                "whole_run": shadow["cpu_ms_per_request"] / alone["cpu_ms_per_request"],
                "median_of_rounds": float(np.median(rounds)),
                "per_round": rounds,
            }
    print(json.dumps(ratios), flush=True)
    return ratios


if __name__ == "__main__":
    main()
