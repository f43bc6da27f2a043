"""Peak memory of an ONNX Runtime session: what loading a model and scoring one batch adds to
a process, measured in a fresh child process so one variant's arenas never count for another.

ONNX Runtime has no API for a CPU session's memory (its arena allocates natively, out of
Python's and tracemalloc's sight), so the child reads the kernel's own figures: it resets the
peak resident set (VmHWM, by writing 5 to /proc/self/clear_refs) after its imports, builds the
session, runs the batch, and reports the new peak minus the resident set before the session.
Where /proc is absent (macOS), the peak since process start (ru_maxrss) stands in, an upper
bound that includes the imports.

The child imports NumPy and ONNX Runtime only: whether the file holds fp16 weights is read here,
in the caller, because importing onnx took 1.1 of the child's 1.3 s (11 variants a tabular
evaluate run).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from pipelines.errors import PipelineError
from pipelines.onnx_export import INPUT
from pipelines.runtime import cuda_present, has_fp16_weights

_CHILD = r"""
import json, resource, sys
import numpy as np
from pipelines.runtime import providers, session

path, batch_file, threads, cpu_only, repeats, input_name, fp16 = sys.argv[1:8]
batch = np.load(batch_file)
# before the reset, so the figure is the session's: torch's import (providers() asks it about
# CUDA) does not count
if cpu_only != "1":
    providers()

def status(key):
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)

try:
    before = status("VmRSS")
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    method = "VmHWM after reset"
except OSError:
    before, method = 0, "ru_maxrss since start"
sess = session(path, threads=int(threads), cpu_only=cpu_only == "1", fp16_weights=fp16 == "1")
for _ in range(int(repeats)):
    sess.run(None, {input_name: batch})
if method.startswith("VmHWM"):
    peak = status("VmHWM")
else:
    scale = 1 if sys.platform == "darwin" else 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
print(json.dumps({"peak_bytes": peak - before, "method": method}))
"""


def session_peak(
    path: Path, batch: np.ndarray, threads: int, repeats: int = 3
) -> dict[str, int | str]:
    """{"peak_bytes": what a fresh process's peak resident set grows by while it builds the
    session of `path` and scores `batch` `repeats` times with `threads` threads, "method": how
    the peak was read}."""
    repo = Path(__file__).resolve().parent.parent
    try:
        fp16 = has_fp16_weights(path)
    except Exception as error:  # noqa: BLE001 - any reason the file cannot be read, named
        raise PipelineError(
            f"{path}: measuring the ONNX Runtime session's memory failed: {error}"
        ) from None
    with tempfile.TemporaryDirectory() as tmp:
        batch_file = Path(tmp) / "batch.npy"
        np.save(batch_file, np.ascontiguousarray(batch))
        cpu_only = "0" if cuda_present() else "1"
        try:
            result = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    _CHILD,
                    str(path.resolve()),
                    str(batch_file),
                    str(threads),
                    cpu_only,
                    str(repeats),
                    INPUT,
                    "1" if fp16 else "0",
                ],
                cwd=repo,
                capture_output=True,
                text=True,
                timeout=300,
            )
        except subprocess.TimeoutExpired:
            raise PipelineError(
                f"{path}: measuring the ONNX Runtime session's memory took over 300 s"
            ) from None
    if result.returncode != 0:
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise PipelineError(f"{path}: measuring the ONNX Runtime session's memory failed: {tail}")
    return json.loads(result.stdout.strip().splitlines()[-1])
