"""Every third-party module the code imports is declared in pyproject.toml (issue 11: scipy and
threadpoolctl were imported but not declared, so a plain ``pip install mlx-explore`` broke)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib

from .conftest import ROOT

#: Imports that are not dependencies, and why.
NOT_DEPENDENCIES = {
    "google": "google.colab exists only on Colab; widgets import it guarded, to turn on its widget manager",
    "mlx_explore": "this project", "widgets": "this project",
}  # fmt: skip


def _imported_top_levels() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for folder in ("mlx_explore", "widgets"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for name in names:
                    found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return found


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"]) + [r for extra in project["optional-dependencies"].values() for r in extra]
    return {re.split(r"[\s<>=!~\[;@]", r, maxsplit=1)[0].lower().replace("_", "-") for r in reqs}


def test_every_imported_package_is_declared():
    declared = _declared()
    dists = importlib.metadata.packages_distributions()
    missing = {}
    for module, where in sorted(_imported_top_levels().items()):
        if module in sys.stdlib_module_names or module in NOT_DEPENDENCIES:
            continue
        names = {d.lower().replace("_", "-") for d in dists.get(module, [])} | {module.lower().replace("_", "-")}
        # tensorflow-cpu provides the module 'tensorflow', declared as 'tensorflow'
        names |= {n.removesuffix("-cpu") for n in names}
        if not names & declared:
            missing[module] = sorted(where)
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_the_two_that_were_missing_are_imported_and_declared():
    imported = _imported_top_levels()
    assert {"scipy", "threadpoolctl"} <= set(imported)
    assert {"scipy", "threadpoolctl", "pooch"} <= _declared()
