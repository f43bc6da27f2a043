"""Rendezvous time for 2 nodes: two torchrun agents on this machine (`--nnodes 2`, c10d
rendezvous on 127.0.0.1, one gloo worker each), as tests/test_multi_node.py launches them.

    python benchmarks/rendezvous.py --repeats 5 --record

Per repeat: launch -> both workers in one process group (what a user waits for before the
first step: interpreter and torch start-up, the agents' c10d rendezvous, the workers' gloo
group), and the workers' own init_process_group + first barrier. Medians are recorded."""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from results_file import add_record_flag, write_results


def worker() -> None:
    """One node's worker: join the group, check an all-reduce, report the times."""
    import torch
    import torch.distributed as dist

    started = time.time()
    dist.init_process_group("gloo")
    dist.barrier()
    ready = time.time()
    total = torch.ones(1)
    dist.all_reduce(total)
    assert total.item() == dist.get_world_size() == 2
    print(json.dumps({"rank": dist.get_rank(), "group_s": ready - started, "ready": ready}))
    dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def one_rendezvous() -> dict[str, float]:
    port = free_port()
    launched = time.time()
    nodes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nnodes=2",
                "--nproc-per-node=1",
                f"--node-rank={rank}",
                "--rdzv-backend=c10d",
                f"--rdzv-endpoint=127.0.0.1:{port}",
                "--rdzv-id=benchmark",
                "--max-restarts=0",
                __file__,
                "--worker",
            ],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
        )
        for rank in (0, 1)
    ]
    reports = []
    for node in nodes:
        out, _ = node.communicate(timeout=300)
        if node.returncode != 0:
            raise SystemExit(f"a node failed (exit {node.returncode})")
        reports += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert sorted(r["rank"] for r in reports) == [0, 1], reports
    return {
        "launch_to_group_s": max(r["ready"] for r in reports) - launched,
        "init_process_group_s": max(r["group_s"] for r in reports),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    add_record_flag(parser)
    args = parser.parse_args(argv)
    runs = [one_rendezvous() for _ in range(args.repeats)]
    payload = {
        "command": "python benchmarks/rendezvous.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared), CPU, gloo, 127.0.0.1",
        "repeats": args.repeats,
        "median_launch_to_group_s": round(
            statistics.median(r["launch_to_group_s"] for r in runs), 2
        ),
        "median_init_process_group_s": round(
            statistics.median(r["init_process_group_s"] for r in runs), 3
        ),
        "runs": [{k: round(v, 3) for k, v in r.items()} for r in runs],
    }
    print(json.dumps(payload, indent=2))
    write_results("rendezvous", payload, args.record)
    return payload


if __name__ == "__main__":
    if "--worker" in sys.argv:
        worker()
    else:
        main()
