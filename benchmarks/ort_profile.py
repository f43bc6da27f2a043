"""Where an ONNX graph spends its time: ONNX Runtime's profiler, total node time per operator
type (the INT8 benchmarks' "where the time goes")."""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnxruntime as ort


def operator_profile(
    path: Path, feeds: dict[str, np.ndarray], output: str, threads: int, runs: int
) -> dict:
    """Share of total node time per operator type (the top 8) over `runs` calls on `feeds`."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.enable_profiling = True
    options.log_severity_level = 3
    with tempfile.TemporaryDirectory() as tmp:
        options.profile_file_prefix = str(Path(tmp) / "profile")
        sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        for _ in range(runs):
            sess.run([output], feeds)
        events = json.loads(Path(sess.end_profiling()).read_text())
    per_op: dict[str, float] = defaultdict(float)
    for event in events:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            per_op[event["args"]["op_name"]] += event["dur"]
    total = sum(per_op.values()) or 1.0
    top = sorted(per_op.items(), key=lambda kv: -kv[1])[:8]
    return {
        "total_ms_per_run": total / 1000 / runs,
        "share_by_op": {op: round(us / total, 4) for op, us in top},
    }
