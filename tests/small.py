"""Small, fast settings shared by the end-to-end tests: the default experiment, shrunk."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parent.parent

SMALL_OVERRIDES = [
    "data.source.rows=6000",
    "data.source.n_days=30",
    "trainer.max_epochs=2",
    "train.batch_size=256",
    "logger.wandb.enabled=false",
    "evaluate.latency_repeats=3",
    "quantize.static.calibration_rows=256",
    "quantize.distill.epochs=2",
]


def small_params(
    path: Path, extra: list[str] | None = None, groups: list[str] | None = None
) -> Path:
    """Write a params.yaml: the committed default (or conf/ composed with Hydra `groups`
    overrides such as strategy=ddp) with the small overrides applied."""
    if groups:
        from pipelines.compose import compose_params

        compose_params(path, groups)
        cfg = OmegaConf.load(path)
    else:
        cfg = OmegaConf.load(REPO / "params.yaml")
    cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist([*SMALL_OVERRIDES, *(extra or [])]))
    path.write_text(OmegaConf.to_yaml(cfg))
    return path


def env() -> dict[str, str]:
    """The test interpreter's bin folder first on PATH, so `python` and `dvc` are the venv's."""
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "WANDB_MODE": "disabled",
    }


def run_python(*args: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    """`python <args>` from the repo root with the venv's tools first on PATH."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env=env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def stage_command(name: str, params: Path, root: Path, *overrides: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        f"stages.{name}",
        "--params",
        str(params),
        "--root",
        str(root),
        *overrides,
    ]


def run_stage(
    name: str, params: Path, root: Path, *overrides: str, timeout: int = 120
) -> subprocess.CompletedProcess[str]:
    """One stage as `dvc repro` runs it: its own process, params file and root."""
    return run_python(*stage_command(name, params, root, *overrides)[1:], timeout=timeout)


def copy_project(dest: Path) -> Path:
    """The git-tracked project (what a fresh clone has) copied to `dest`."""
    files = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


def committed_clone(dest: Path) -> Path:
    """The git-tracked files with one commit: what `git clone` gives a user (DVC experiments
    and `dvc metrics show` need a commit)."""
    clone = copy_project(dest)
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "clone"]):
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=clone, check=True
        )
    return clone


def load_benchmark(name: str) -> ModuleType:
    """`benchmarks/<name>.py` imported as a module (benchmarks/ is scripts, not a package; its
    scripts import their siblings, so the folder goes on sys.path)."""
    folder = str(REPO / "benchmarks")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(
        f"{name}_benchmark", REPO / "benchmarks" / f"{name}.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def data_stages_done(where: Path, extra: list[str]) -> tuple[Path, Path]:
    """Params (the small settings plus `extra`) and a root in `where` with ingest..augment
    done: what a training test copies for each run."""
    from pipelines.config import load_params
    from pipelines.layout import Layout
    from stages import augment, clean, ingest, profile

    params = small_params(where / "params.yaml", extra)
    cfg = load_params(params)
    root = where / "prepared"
    for stage in (ingest, profile, clean, augment):
        stage.run(cfg, Layout(root))
    return params, root
