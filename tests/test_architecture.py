"""The shape of the code, as ARCHITECTURE.md states it: stages know no modality, a modality is
a plug-in folder that imports no other modality, and no two modules import each other."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from pipelines.modalities.registry import BUILT_IN, STAGES

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("pipelines", "stages", "hydra_plugins")
REGISTRY = "pipelines/modalities/registry.py"


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the project's packages."""
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _imports(name: str) -> set[str]:
    """Project modules `name` imports anywhere in its file (top level or inside functions)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    # imports under `if TYPE_CHECKING:` never run: they are type hints, not dependencies
    type_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
        for statement in node.body
        for inner in ast.walk(statement)
    }
    targets: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                targets.add(submodule if submodule in MODULES else base)
        elif isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
    return {t for t in targets if t in MODULES and t != name}


def test_no_two_modules_import_each_other() -> None:
    graph = {name: _imports(name) for name in MODULES}
    mutual = sorted(
        f"{a} <-> {b}" for a, targets in graph.items() for b in targets if a < b and a in graph[b]
    )
    assert not mutual, f"modules that import each other: {mutual}"


def test_only_the_registry_names_a_modality_in_a_condition() -> None:
    # a modality's name compared with, or looked up in a literal list: the ladder the registry
    # replaces (a family's declared `modalities` tuple is a fact, not a branch)
    name = r"modality[\"']?[)\]]?"
    pattern = re.compile(rf"{name}\s*(==|!=)\s*[\"']|{name}\s+(not\s+)?in\s*[(\[{{]\s*[\"']")
    offenders = [
        f"{path.relative_to(REPO)}:{number}"
        for path in (*REPO.glob("stages/*.py"), *REPO.glob("pipelines/**/*.py"))
        if str(path.relative_to(REPO)) != REGISTRY
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not offenders, f"modality tests outside {REGISTRY}: {offenders}"


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_is_short_and_imports_no_modality(stage: str) -> None:
    name = f"stages.{stage}"
    assert len(MODULES[name].read_text().splitlines()) <= 60
    modality_imports = {m for m in _imports(name) if m.startswith("pipelines.modalities.")}
    assert modality_imports <= {"pipelines.modalities.registry"}, modality_imports


@pytest.mark.parametrize("modality", sorted(BUILT_IN))
def test_a_modality_imports_no_other_modality(modality: str) -> None:
    package = BUILT_IN[modality]
    others = tuple(f"{p}." for m, p in BUILT_IN.items() if m != modality)
    crossing = sorted(
        f"{name} -> {target}"
        for name in MODULES
        if name == package or name.startswith(package + ".")
        for target in _imports(name)
        if target.startswith(others)
    )
    assert not crossing, crossing


@pytest.mark.parametrize("modality", sorted(BUILT_IN))
def test_a_modality_has_a_plug_in_for_every_stage_and_config_checks(modality: str) -> None:
    package = BUILT_IN[modality]
    missing = [s for s in STAGES if f"{package}.plugins.{s}" not in MODULES]
    assert not missing and f"{package}.checks" in MODULES, missing


# the data sections each modality reads (conf/config.yaml declares all of them empty, for DVC)
DATA_SECTIONS = {
    "tabular": {"profile", "clean", "augment"},
    "text": {"text"},
    "image": {"image"},
    "timeseries": {"timeseries"},
}


@pytest.mark.parametrize("path", sorted((REPO / "conf" / "data").glob("*.yaml")), ids=str)
def test_a_data_config_declares_only_its_own_modalitys_section(path: Path) -> None:
    import yaml

    data = yaml.safe_load(path.read_text())
    own = data.get("modality", "tabular")
    others = set().union(*(keys for name, keys in DATA_SECTIONS.items() if name != own))
    assert not others & set(data), f"{path.name} declares {sorted(others & set(data))}"
