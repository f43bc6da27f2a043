"""Runner overheads and data-stage scaling:

    python benchmarks/pipeline.py            # cold start, no-op rebuild, data stages 100k & 1M

- cold start: `python train.py --cfg job` wall time (median of 5).
- no-op rebuild: a second `dvc repro` vs `dvc status` on the same repo (median of 3 each);
  run after a full `dvc repro`.
- data stages: ingest -> profile -> clean -> augment at 100k and 1M simulated transactions
  in a temporary root; wall time, peak RSS of the slowest stage, and the 1M/100k ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_file import add_record_flag, write_results

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]}


def timed(cmd: list[str], cwd: Path = REPO) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=ENV, check=True, capture_output=True)
    return time.perf_counter() - start


def cold_start() -> dict[str, float]:
    runs = [timed([sys.executable, "train.py", "--cfg", "job"]) for _ in range(5)]
    return {"median_s": statistics.median(runs)}


def noop_rebuild() -> dict[str, float]:
    repro = statistics.median(timed(["dvc", "repro"]) for _ in range(3))
    status = statistics.median(timed(["dvc", "status"]) for _ in range(3))
    return {"repro_s": repro, "status_s": status, "ratio": repro / status}


def data_stages(rows: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as root:
        params = Path(root) / "params.yaml"
        params.write_text((REPO / "params.yaml").read_text())
        total, peak_kb = 0.0, 0
        for stage in ("ingest", "profile", "clean", "augment"):
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            total += timed(
                [
                    sys.executable,
                    "-m",
                    f"stages.{stage}",
                    "--params",
                    str(params),
                    "--root",
                    root,
                    f"data.source.rows={rows}",
                ]
            )
            peak_kb = max(peak_kb, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before)
    return {"rows": rows, "seconds": total, "peak_rss_mb": peak_kb / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_record_flag(parser)
    args = parser.parse_args()
    results = {"cold_start": cold_start(), "noop_rebuild": noop_rebuild()}
    small, large = data_stages(100_000), data_stages(1_000_000)
    results["data_stages"] = {
        "100k": small,
        "1M": large,
        "scaling_1M_over_100k": large["seconds"] / small["seconds"],
    }
    results["command"] = "python benchmarks/pipeline.py"
    write_results("pipeline", results, args.record)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
