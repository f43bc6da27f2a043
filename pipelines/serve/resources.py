"""Resource metrics of the server process: prometheus_client's process collector (CPU
seconds, resident memory, open file descriptors), the OS threads (ONNX Runtime's pools
included, which Python's threading does not see), what the alert rules divide by (the cores
the process may run on, the memory it may use), and GPU memory and utilisation through NVML
where a GPU and its driver are present (nothing otherwise: no GPU, no series)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CGROUP_MEMORY_MAX = Path("/sys/fs/cgroup/memory.max")


def os_threads() -> int:
    """Threads of this process as the kernel counts them (Linux), else Python's."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def memory_limit_bytes() -> float:
    """The container's memory limit (cgroup v2) when it sets one, else the machine's RAM."""
    try:
        text = CGROUP_MEMORY_MAX.read_text().strip()
        if text.isdigit():
            return float(text)
    except OSError:
        pass
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


class HostCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        for name, doc, value in (
            ("serve_process_threads", "OS threads of the server process", os_threads()),
            ("serve_cpu_cores", "Cores the server process may run on", usable_cores()),
            (
                "serve_memory_limit_bytes",
                "Memory the server may use: the cgroup limit, else the machine's RAM",
                memory_limit_bytes(),
            ),
        ):
            gauge = GaugeMetricFamily(name, doc)
            gauge.add_metric([], value)
            yield gauge


class GpuCollector(Collector):
    """serve_gpu_memory_used_bytes, serve_gpu_memory_total_bytes and
    serve_gpu_utilization_ratio per device, from NVML (nvidia-ml-py)."""

    def __init__(self, nvml: Any, count: int) -> None:
        self.nvml, self.count = nvml, count

    def collect(self) -> Iterator[Metric]:
        nvml = self.nvml
        used = GaugeMetricFamily("serve_gpu_memory_used_bytes", "GPU memory in use", ["gpu"])
        total = GaugeMetricFamily("serve_gpu_memory_total_bytes", "GPU memory", ["gpu"])
        busy = GaugeMetricFamily(
            "serve_gpu_utilization_ratio", "Share of the last sample period a kernel ran", ["gpu"]
        )
        for i in range(self.count):
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(i)
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
                rates = nvml.nvmlDeviceGetUtilizationRates(handle)
            except nvml.NVMLError:  # a device gone or reset: skip it this scrape
                continue
            used.add_metric([str(i)], float(memory.used))
            total.add_metric([str(i)], float(memory.total))
            busy.add_metric([str(i)], rates.gpu / 100.0)
        yield from (used, total, busy)


def gpu_collector() -> GpuCollector | None:
    """An NVML collector when NVML loads and sees a GPU; None (no GPU series) otherwise."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        count = pynvml.nvmlDeviceGetCount()
    except pynvml.NVMLError:  # no driver (a CPU machine): nothing to report
        return None
    return GpuCollector(pynvml, count) if count else None


def register_resources(registry: CollectorRegistry) -> bool:
    """Register the process, host and (where present) GPU collectors; whether a GPU is."""
    ProcessCollector(registry=registry)
    registry.register(HostCollector())
    gpu = gpu_collector()
    if gpu is not None:
        registry.register(gpu)
    return gpu is not None
