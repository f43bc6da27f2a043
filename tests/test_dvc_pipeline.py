"""`dvc repro` on a fresh copy of the project: all eight stages, a no-op rerun, and an
incremental rerun after one quantize (pruning) parameter changes."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from pipelines.modalities.registry import BUILT_IN
from tests.small import REPO, committed_clone, copy_project, env, small_params

STAGES = ["ingest", "profile", "clean", "augment", "train", "quantize", "evaluate", "export"]


def dvc(project: Path, *args: str) -> str:
    done = subprocess.run(["dvc", *args], cwd=project, env=env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def ran(output: str) -> list[str]:
    return re.findall(r"Running stage '(\w+)'", output)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = copy_project(tmp_path_factory.mktemp("clone"))
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    small_params(project / "params.yaml")
    return project


@pytest.mark.slow
def test_repro_runs_eight_stages_then_nothing_then_exactly_the_changed_ones(project: Path) -> None:
    assert ran(dvc(project, "repro")) == STAGES
    assert json.loads((project / "metrics" / "evaluate.json").read_text())["variants"]
    first_metrics = (project / "metrics" / "train.json").read_text()

    assert ran(dvc(project, "repro")) == []
    assert "up to date" in dvc(project, "status")

    params = yaml.safe_load((project / "params.yaml").read_text())
    # a pruning key: the compressed variants are rebuilt and re-evaluated, the model is not
    params["quantize"]["prune"]["target"] = 0.4
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert ran(dvc(project, "repro")) == ["quantize", "evaluate", "export"]
    assert (project / "metrics" / "train.json").read_text() == first_metrics


@pytest.mark.slow
def test_two_fresh_repros_write_identical_metrics(project: Path, tmp_path: Path) -> None:
    other = copy_project(tmp_path / "other")
    subprocess.run(["git", "init", "-q"], cwd=other, check=True)
    (other / "params.yaml").write_text((project / "params.yaml").read_text())
    dvc(other, "repro")
    for name in ("profile", "clean", "augment", "train", "quantize", "evaluate"):
        assert (other / "metrics" / f"{name}.json").read_text() == (
            project / "metrics" / f"{name}.json"
        ).read_text(), name
    # every output DVC hashes is reproducible, so a fresh clone's `dvc repro` of the committed
    # code leaves the committed dvc.lock as it is (timings live outside DVC's outputs)
    assert (other / "dvc.lock").read_text() == (project / "dvc.lock").read_text()


def test_dvc_lock_matches_the_committed_code_and_params(tmp_path: Path) -> None:
    """A fresh clone's `dvc status` may miss outputs (they live in the remote), but no code
    dependency or parameter differs from what dvc.lock recorded: the lock is current."""
    clone = committed_clone(tmp_path / "clone")
    status = json.loads(dvc(clone, "status", "--json"))
    stale = {
        stage: changes
        for stage, entries in status.items()
        for entry in entries
        if isinstance(entry, dict)
        for kind, changes in entry.items()
        if kind == "changed deps"
        and any(path.startswith(("stages/", "pipelines/", "params.yaml")) for path in changes)
    }
    assert not stale, f"dvc.lock is stale (run `dvc repro` and commit dvc.lock): {stale}"


def test_a_fresh_clone_shows_the_committed_headline_metrics(tmp_path: Path) -> None:
    clone = committed_clone(tmp_path / "clone")
    shown = json.loads(dvc(clone, "metrics", "show", "--json"))
    (workspace,) = shown.values()
    headline = workspace["data"]["metrics/headline.json"]["data"]["test"]
    assert 0.5 < headline["onnx_fp32"]["auroc"] <= 1.0
    assert set(headline["onnx_fp32"]) == {"auroc", "auprc", "f1", "threshold", "auprc_kept", "kib"}


@pytest.mark.slow
def test_outputs_round_trip_through_the_default_remote(project: Path) -> None:
    if not (project / "dvc.lock").exists() or "up to date" not in dvc(project, "status"):
        dvc(project, "repro")
    dvc(project, "push")
    before = (project / "export" / "model.onnx").read_bytes()
    for name in ("export", "models", "data/ingested"):
        subprocess.run(["rm", "-rf", str(project / name)], check=True)
    dvc(project, "pull")
    assert (project / "export" / "model.onnx").read_bytes() == before
    assert (project / "data" / "ingested" / "train.arrow").is_file()


# Shared by every stage and holding none of a stage's computation: config parsing, paths,
# errors, atomic writes, progress bars, the CLI wrapper. Listing them would rerun all eight
# stages for a change in, say, a progress bar.
INFRASTRUCTURE = {
    "pipelines/__init__.py",
    "pipelines/config.py",
    # the config schema, one module per section, and each modality's own sections and checks
    "pipelines/schema/__init__.py",
    "pipelines/schema/fields.py",
    "pipelines/schema/data.py",
    "pipelines/schema/model.py",
    "pipelines/schema/training.py",
    "pipelines/schema/compression.py",
    "pipelines/schema/evaluation.py",
    "pipelines/modalities/tabular/config.py",
    "pipelines/modalities/text/config.py",
    "pipelines/errors.py",
    "pipelines/io.py",
    "pipelines/layout.py",
    "pipelines/progress.py",
    # the text settings' dataclasses, part of the config schema (pipelines/config.py imports them)
    "pipelines/modalities/text/rules_config.py",
    # how a stage finds its plug-in, and what config loading asks of each modality
    "pipelines/modalities/registry.py",
    "pipelines/modalities/__init__.py",
    "pipelines/modalities/tabular/__init__.py",
    "pipelines/modalities/tabular/plugins/__init__.py",
    # the image settings' dataclasses, likewise
    "pipelines/modalities/image/config.py",
    # the model families' facts the schema's model checks read (the stages that build a model
    # depend on all of pipelines/models)
    "pipelines/models/__init__.py",
    "pipelines/models/families.py",
    # package markers (a docstring)
    "pipelines/modalities/text/__init__.py",
    "pipelines/modalities/text/plugins/__init__.py",
    "pipelines/modalities/image/__init__.py",
    "pipelines/modalities/image/plugins/__init__.py",
    # the time-series settings' dataclasses and package markers, likewise
    "pipelines/modalities/timeseries/config.py",
    # the unit names that config checks (clean, which converts with it, lists it in dvc.yaml)
    "pipelines/modalities/timeseries/units.py",
    "pipelines/modalities/timeseries/__init__.py",
    "pipelines/modalities/timeseries/plugins/__init__.py",
    "stages/_cli.py",
    # each stage's wall time, written outside DVC's outputs for the run summary
    "pipelines/stage_times.py",
}
# how a training run is launched and logged, reached by the later stages only through
# pipelines/training.py's imports (they load a checkpoint; they never train)
TRAINING_RUN = {
    "pipelines/strategy.py",
    "pipelines/tracking.py",
    "pipelines/sweeps/pruning.py",
    "pipelines/lightning_options.py",
}


def project_imports(module: str) -> set[str]:
    """Files of the project's own modules that `module` imports, transitively."""
    import ast

    def path_of(name: str) -> Path | None:
        for candidate in (REPO / f"{name.replace('.', '/')}.py",
                          REPO / name.replace(".", "/") / "__init__.py"):  # fmt: skip
            if candidate.is_file():
                return candidate
        return None

    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen or (path := path_of(name)) is None:
            continue
        seen.add(name)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module.split(".")[0] in ("pipelines", "stages"):
                    todo.append(node.module)
                    todo.extend(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                todo.extend(a.name for a in node.names if a.name.split(".")[0] == "pipelines")
    return {str(p.relative_to(REPO)) for name in seen if (p := path_of(name))}


@pytest.mark.parametrize("stage", STAGES)
def test_every_module_a_stage_runs_is_one_of_its_dvc_dependencies(stage: str) -> None:
    """Otherwise a code change reaches the stage's outputs without DVC rerunning it (a model
    change that only alters the exported graph, say, when the checkpoint comes out the same)."""
    deps = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage]["deps"]
    exempt = INFRASTRUCTURE | (set() if stage == "train" else TRAINING_RUN)
    # the registry imports a modality's plug-in by name when the stage runs: every built-in
    # modality's module for this stage is part of what the stage may run
    runs = project_imports(f"stages.{stage}").union(
        *(project_imports(f"{package}.plugins.{stage}") for package in BUILT_IN.values())
    )
    undeclared = sorted(
        f
        for f in runs - exempt
        if not any(f == d or f.startswith(d.rstrip("/") + "/") for d in deps)
    )
    assert not undeclared, f"dvc.yaml stage {stage!r} runs but does not depend on {undeclared}"
