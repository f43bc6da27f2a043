"""Scale of the data layer: simulated transactions through ingest -> clean at 1M and 10M rows.

    python benchmarks/data_scale.py [--sizes 1000000 10000000] [--num-proc N] [--record]

Each stage runs as `dvc repro` runs it (`python -m stages.<name>`, its own process) in a
temporary root, one root per size, so every size starts from a fresh process. Per stage:
wall time, and peak RSS from the kernel (`os.wait4`'s ru_maxrss for that one child, which
counts the pages of memory-mapped Arrow files it touched as well as its own heap). While a
stage runs, /proc/<pid>/status is sampled to split the peak into anonymous memory (heap:
numpy/pandas/sklearn) and file-backed pages (the memory-mapped splits), which is where the
memory goes. Goal: 10M rows with peak RSS <= 4 GB and time growing no worse than linearly.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from results_file import add_record_flag, write_results

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]}
STAGES = ("ingest", "clean")
GOAL_PEAK_RSS_GB = 4.0


def _sample_status(pid: int, peaks: dict[str, int], done: threading.Event) -> None:
    """Peak RssAnon / RssFile (kB) of `pid`, sampled every 50 ms until `done`."""
    path = Path(f"/proc/{pid}/status")
    while not done.is_set():
        try:
            for line in path.read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("RssAnon", "RssFile"):
                    peaks[key] = max(peaks.get(key, 0), int(value.split()[0]))
        except (OSError, ValueError):
            return
        done.wait(0.05)


def run_stage(stage: str, root: Path, params: Path, overrides: list[str]) -> dict[str, Any]:
    """One stage in its own process: wall seconds, peak RSS (kernel), anon/file split."""
    cmd = [sys.executable, "-m", f"stages.{stage}", "--params", str(params), "--root", str(root)]
    start = time.perf_counter()
    child = subprocess.Popen(
        [*cmd, *overrides], cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    peaks: dict[str, int] = {}
    done = threading.Event()
    sampler = threading.Thread(target=_sample_status, args=(child.pid, peaks, done), daemon=True)
    sampler.start()
    # wait4 rather than wait: the rusage of this child alone (RUSAGE_CHILDREN would be the
    # maximum over every child so far)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    stderr = child.stderr.read().decode() if child.stderr else ""
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"{stage} failed (exit {child.returncode}):\n{stderr[-3000:]}")
    return {
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux: kilobytes
        "sampled_peak_anon_mb": round(peaks.get("RssAnon", 0) / 1024, 1),
        "sampled_peak_file_mb": round(peaks.get("RssFile", 0) / 1024, 1),
    }


def measure(rows: int, workdir: Path, num_proc: int | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(dir=workdir, prefix=f"data-scale-{rows}-") as folder:
        root = Path(folder)
        params = root / "params.yaml"
        params.write_text((REPO / "params.yaml").read_text())
        overrides = [f"data.source.rows={rows}"]
        if num_proc:
            overrides.append(f"data.num_proc={num_proc}")
        stages = {stage: run_stage(stage, root, params, overrides) for stage in STAGES}
        clean = json.loads((root / "metrics" / "clean.json").read_text())
        on_disk = {
            name: round(sum(p.stat().st_size for p in (root / "data" / name).glob("*")) / 2**20, 1)
            for name in ("ingested", "clean")
        }
    return {
        "rows_requested": rows,
        "rows_ingested": sum(clean["rows_in"].values()),
        "rows_clean": sum(clean["rows_out"].values()),
        "quarantined": clean["quarantined"],
        "stages": stages,
        "seconds": round(sum(s["seconds"] for s in stages.values()), 2),
        "peak_rss_mb": max(s["peak_rss_mb"] for s in stages.values()),
        "on_disk_mb": on_disk,
    }


def summarise(sizes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per-row time and the growth from the smallest to the largest size."""
    ordered = sorted(sizes.values(), key=lambda s: s["rows_ingested"])
    small, large = ordered[0], ordered[-1]
    rows_ratio = large["rows_ingested"] / small["rows_ingested"]
    time_ratio = large["seconds"] / small["seconds"]
    return {
        "us_per_row": {
            str(s["rows_requested"]): round(1e6 * s["seconds"] / s["rows_ingested"], 2)
            for s in ordered
        },
        "rows_ratio": round(rows_ratio, 2),
        "time_ratio": round(time_ratio, 2),
        # time grows no worse than linearly: the ratio of times at most the ratio of rows
        "linear_or_better": time_ratio <= rows_ratio,
        "largest_peak_rss_gb": round(large["peak_rss_mb"] / 1024, 2),
        "peak_rss_goal_met": large["peak_rss_mb"] / 1024 <= GOAL_PEAK_RSS_GB,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--num-proc", type=int, default=None, help="data.num_proc")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where the temporary roots go (default: TMP)"
    )
    parser.add_argument(
        "--name", default="data_scale", help="results file name (benchmarks/results/<name>.json)"
    )
    add_record_flag(parser)
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.gettempdir())
    workdir.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for rows in args.sizes:
        sizes[str(rows)] = measure(rows, workdir, args.num_proc)
        print(json.dumps({str(rows): sizes[str(rows)]}, indent=2), flush=True)
    command = "python benchmarks/data_scale.py" + "".join(
        f" {flag}" for flag in (sys.argv[1:] if argv is None else argv)
    )
    results = {
        "sizes": sizes,
        "summary": summarise(sizes),
        "num_proc": args.num_proc,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "command": command,
    }
    write_results(args.name, results, args.record)
    print(json.dumps(results["summary"], indent=2))
    return results


if __name__ == "__main__":
    main()
