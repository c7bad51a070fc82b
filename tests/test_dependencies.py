"""Every third-party module the package imports is declared in pyproject.toml (core or an extra)."""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "kelpseg"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_modules(src: Path) -> dict[str, set[str]]:
    """Top-level modules imported anywhere under ``src`` (absolute imports), with the importing files."""
    found: dict[str, set[str]] = {}
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(path.name)
    return found


def declared_distributions(pyproject: Path) -> set[str]:
    """Distributions named in dependencies and extras, plus what their requested extras pull in."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    lines = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        lines.extend(extra)
    declared: set[str] = set()
    for line in lines:
        req = Requirement(line)
        declared.add(_norm(req.name))
        for extra in req.extras:  # e.g. dask[distributed] declares distributed
            try:
                requires = metadata.requires(req.name) or []
            except metadata.PackageNotFoundError:
                continue
            for dep in map(Requirement, requires):
                if dep.marker is not None and dep.marker.evaluate({"extra": extra}):
                    declared.add(_norm(dep.name))
    return declared


def test_every_third_party_import_is_declared() -> None:
    declared = declared_distributions(ROOT / "pyproject.toml")
    providers = metadata.packages_distributions()
    undeclared = []
    for module, files in sorted(imported_modules(SRC).items()):
        if module in sys.stdlib_module_names or module in {"kelpseg", "__future__"}:
            continue
        # A module not installed here maps to the distribution of the same name.
        dists = providers.get(module, [module])
        if not any(_norm(d) in declared for d in dists):
            undeclared.append(f"{module} ({', '.join(dists)}) imported by {sorted(files)[0]}")
    assert not undeclared, "undeclared imports:\n" + "\n".join(undeclared)


def test_checker_flags_an_undeclared_import(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "mod.py").write_text("import numpy\nfrom somethingelse.sub import x\nimport os\n")
    modules = imported_modules(pkg)
    assert set(modules) == {"numpy", "somethingelse", "os"}
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "x"\ndependencies = ["numpy>=2"]\n[project.optional-dependencies]\n'
        'extra = ["dask[distributed]>=2024.1"]\n'
    )
    declared = declared_distributions(pyproject)
    assert "numpy" in declared and "somethingelse" not in declared
    if any(d.metadata["Name"].lower() == "dask" for d in metadata.distributions()):
        assert "distributed" in declared


@pytest.mark.parametrize(
    ("requirement", "platform", "applies"),
    [
        ("xgboost-cpu>=2.0,<4; sys_platform != 'darwin'", "linux", True),
        ("xgboost-cpu>=2.0,<4; sys_platform != 'darwin'", "darwin", False),
        ("xgboost>=2.0,<4; sys_platform == 'darwin'", "darwin", True),
        ("xgboost>=2.0,<4; sys_platform == 'darwin'", "win32", False),
    ],
)
def test_xgboost_installs_on_every_platform(requirement: str, platform: str, applies: bool) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert requirement in project["optional-dependencies"]["tabular"]
    marker = Requirement(requirement).marker
    assert marker is not None
    assert marker.evaluate({"sys_platform": platform}) is applies
