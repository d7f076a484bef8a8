"""The layering, read from the source: which package may import which (every import, at any depth of a module).

recpipe/ is the bottom (contracts, config, lake, tables, tracking conventions) and imports no other package of
the project; validation/ does not import training/; no library package imports orchestration/ or dags/; the
DAG files import nothing of the project but orchestration/; and the packages import each other without a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARIES = ("recpipe", "spark_jobs", "training", "indexing", "validation", "reporting")
PROJECT = (*LIBRARIES, "orchestration", "dags", "benchmarks", "security", "airflow_config", "tests")
# What each package may import of the project, beyond itself.
ALLOWED = {
    "recpipe": set(),
    "spark_jobs": {"recpipe"},
    "training": {"recpipe"},
    "validation": {"recpipe"},
    "indexing": {"recpipe", "training", "validation"},
    "reporting": {"recpipe", "training"},
    "orchestration": set(LIBRARIES),
    "dags": {"orchestration"},
    "airflow_config": {"orchestration"},
}


def imports_of(path: Path) -> set[str]:
    """Top-level project packages a module imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        found |= {name.split(".")[0] for name in names if name.split(".")[0] in PROJECT}
    return found


def package_imports() -> dict[str, dict[str, set[str]]]:
    """package -> {module path: the other project packages it imports}."""
    out: dict[str, dict[str, set[str]]] = {}
    for package in ALLOWED:
        modules = sorted((ROOT / package).rglob("*.py"))
        assert modules, f"no modules under {package}/"
        out[package] = {str(m.relative_to(ROOT)): imports_of(m) - {package} for m in modules}
    return out


def test_the_import_walk_sees_nested_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import os\n\ndef f():\n    from training.catalogue import MODELS\n    import spark_jobs.common\n")
    assert imports_of(module) == {"training", "spark_jobs"}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_package_imports_only_the_layers_below_it(package):
    wrong = {
        module: sorted(found - ALLOWED[package])
        for module, found in package_imports()[package].items()
        if found - ALLOWED[package]
    }
    assert not wrong, f"{package}/ may import {sorted(ALLOWED[package]) or 'nothing of the project'}; found {wrong}"


def test_no_import_cycle_between_packages():
    graph = {package: set().union(*modules.values()) & set(ALLOWED) for package, modules in package_imports().items()}

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for nxt in graph[start] - seen:
            if nxt == target or reaches(nxt, target, seen | {nxt}):
                return True
        return False

    cycles = sorted(p for p in graph if reaches(p, p, set()))
    assert not cycles, f"packages on an import cycle: {cycles}; graph {graph}"


def test_the_core_imports_no_heavy_library():
    """recpipe/ imports stdlib, PyYAML, pyarrow and numpy at module level; MLflow only inside functions."""
    heavy = {"tensorflow", "keras", "pyspark", "mlflow", "airflow", "great_expectations", "faiss", "xgboost", "sklearn"}
    found = {}
    for path in sorted((ROOT / "recpipe").rglob("*.py")):
        tree = ast.parse(path.read_text())
        top = set()
        for node in tree.body:
            if isinstance(node, ast.Import):
                top |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                top.add(node.module.split(".")[0])
        if top & heavy:
            found[str(path.relative_to(ROOT))] = sorted(top & heavy)
    assert not found, f"module-level heavy imports in the core: {found}"
