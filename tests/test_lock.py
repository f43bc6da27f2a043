"""The hashed locks `make setup` installs from (requirements/*.lock, written by `make lock`):
they must cover every dependency pyproject.toml declares for Linux, at versions inside
pyproject's ranges, each pinned with a hash, so an install cannot drift from the tested set.
The CPU locks hold the CPU build of torch, the CUDA locks PyPI's CUDA build and its wheels."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
LOCKS = REPO / "requirements"
# the platform the CPU lock is resolved for (Makefile: --python-platform, --python-version)
CPU_LINUX = {
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "python_version": "3.11",
    "python_full_version": "3.11.0",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+) \\$")


def locked(path: Path) -> dict[str, tuple[Version, list[str]]]:
    """{normalized name: (version, hashes)} of a lock in pip's requirements format."""
    pins: dict[str, tuple[Version, list[str]]] = {}
    current: list[str] | None = None
    for line in path.read_text().splitlines():
        match = PIN.match(line)
        if match:
            current = []
            pins[canonicalize_name(match["name"])] = (Version(match["version"]), current)
        elif line.strip().startswith("--hash=sha256:") and current is not None:
            current.append(line.strip().removeprefix("--hash=sha256:").rstrip(" \\"))
        elif line.strip() and not line.lstrip().startswith("#"):
            raise AssertionError(f"{path.name}: unexpected line {line!r}")
    return pins


def declared() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + project["optional-dependencies"]["dev"]
    return [Requirement(line) for line in lines]


def applies_on_cpu_linux(req: Requirement) -> bool:
    return req.marker is None or req.marker.evaluate(CPU_LINUX)


@pytest.fixture(scope="module")
def cpu_lock() -> dict[str, tuple[Version, list[str]]]:
    return locked(LOCKS / "cpu-linux.lock")


@pytest.mark.parametrize("name", ["cpu-linux.lock", "cuda-linux.lock"])
def test_each_linux_lock_covers_every_pyproject_dependency_within_its_range(name: str) -> None:
    lock = locked(LOCKS / name)
    wanted = [req for req in declared() if applies_on_cpu_linux(req)]
    assert len(wanted) > 40  # the parse saw pyproject's whole list
    missing = [req.name for req in wanted if canonicalize_name(req.name) not in lock]
    assert not missing, f"not in requirements/{name} (run `make lock`): {missing}"
    outside = {
        req.name: str(lock[canonicalize_name(req.name)][0])
        for req in wanted
        if not req.specifier.contains(lock[canonicalize_name(req.name)][0], prereleases=True)
    }
    assert not outside, f"{name}: locked versions outside pyproject's ranges: {outside}"


def test_a_dependency_for_another_platform_is_not_locked(cpu_lock) -> None:
    # onnxruntime-gpu is Linux x86_64's; plain onnxruntime is every other platform's
    assert "onnxruntime-gpu" in cpu_lock and "onnxruntime" not in cpu_lock


@pytest.mark.parametrize(
    "name",
    [
        "cpu-linux.lock",
        "cpu-linux-torch.lock",
        "cuda-linux.lock",
        "cuda-linux-torch.lock",
        "no-deps.lock",
    ],
)
def test_every_locked_package_is_pinned_with_a_hash(name: str) -> None:
    pins = locked(LOCKS / name)
    assert pins
    unhashed = [pkg for pkg, (_, hashes) in pins.items() if not hashes]
    assert not unhashed, f"{name}: no --hash for {unhashed}"
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for _, hashes in pins.values() for h in hashes)


def test_torch_is_the_cpu_build_and_both_cpu_locks_agree(cpu_lock) -> None:
    first = locked(LOCKS / "cpu-linux-torch.lock")
    assert first["torch"][0].local == "cpu"
    for name in ("torch", "pip", "setuptools", "wheel"):
        assert name in first
    differ = {
        n: (str(v), str(cpu_lock[n][0])) for n, (v, _) in first.items() if v != cpu_lock[n][0]
    }
    assert not differ, f"cpu-linux-torch.lock and cpu-linux.lock disagree: {differ}"
    assert set(first["torch"][1]) == set(cpu_lock["torch"][1])


def test_the_cuda_locks_hold_pypis_cuda_torch_with_its_nvidia_wheels() -> None:
    cuda, first = locked(LOCKS / "cuda-linux.lock"), locked(LOCKS / "cuda-linux-torch.lock")
    assert cuda["torch"][0] == Version("2.13.0")  # no local label: PyPI's (CUDA) build
    assert any(name.startswith("nvidia-") for name in cuda) and "triton" in cuda
    differ = {n: (str(v), str(cuda[n][0])) for n, (v, _) in first.items() if v != cuda[n][0]}
    assert not differ, f"cuda-linux-torch.lock and cuda-linux.lock disagree: {differ}"


def test_the_lock_parser_rejects_what_pip_would_read_differently(tmp_path: Path) -> None:
    bad = tmp_path / "bad.lock"
    bad.write_text("numpy>=1.26\n")
    with pytest.raises(AssertionError, match="unexpected line"):
        locked(bad)
