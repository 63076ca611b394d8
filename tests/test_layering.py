"""The layers hold (``docs/architecture.md``, "Layers"): the headless core ``mlx_explore`` never
imports the interactive layer (``widgets``, ipywidgets, plotly, IPython), no module reaches for a
private name of another package, and ``mlx_explore``'s modules import each other without circles.

The checkers work on parsed sources (``ast``), so each one is also run on a small synthetic package
that breaks its rule, to prove it can fail.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from .conftest import ROOT

#: Top-level modules the core must never import: the interactive layer and what it is built on.
BANNED_IN_CORE = ("widgets", "ipywidgets", "plotly", "IPython")

#: Private names of other libraries that framework code may import, each with why: nothing public
#: gives the same. Anything else private from another package fails the test.
ALLOWED_PRIVATE = {
    "torch._inductor.runtime.cache_dir_utils.cache_dir": "torch has no public API for inductor's cache folder, "
    "which the flags report as warm or cold (a warm cache makes compile_s small)",
    "torch._dynamo": "Keras calls torch.compile itself, so static shapes for its steps can only be asked for "
    "through torch._dynamo.config.automatic_dynamic_shapes (keras-torch compiled; the CNN's conformance check "
    "fails in TorchInductor without it)",
}


@dataclass(frozen=True)
class Module:
    """One parsed source file: its dotted ``name``, whether it is a package's ``__init__``, its AST."""

    name: str
    is_package: bool
    tree: ast.Module
    path: str

    @property
    def package(self) -> str:
        """The package this module is in (a package's ``__init__`` is in the package itself)."""
        return self.name if self.is_package else self.name.rpartition(".")[0]


def parse_tree(files: dict[str, str]) -> dict[str, Module]:
    """``{relative path: source}`` (``"pkg/__init__.py"``, ``"pkg/a.py"``) -> ``{dotted name: Module}``."""
    out = {}
    for rel, source in files.items():
        parts = Path(rel).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        out[name] = Module(name, is_package, ast.parse(source, filename=rel), rel)
    return out


def load_package(*names: str) -> dict[str, Module]:
    """Every ``.py`` file of the top-level packages ``names`` in this checkout, parsed."""
    files = {}
    for name in names:
        for path in sorted((ROOT / name).rglob("*.py")):
            files[str(path.relative_to(ROOT))] = path.read_text()
    return parse_tree(files)


def _resolve(module: Module, node: ast.ImportFrom) -> str:
    """The absolute module name a ``from ... import`` statement reads from."""
    if not node.level:
        return node.module or ""
    base = module.package.split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _statements(body: list[ast.stmt], module_level: bool):
    """Every statement of ``body``, nested ones included; with ``module_level``, only those that
    run when the module is imported: not inside functions, nor under ``if TYPE_CHECKING:``."""
    for node in body:
        if module_level and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if module_level and isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from _statements(node.orelse, module_level)
            continue
        yield node
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            for child in getattr(node, field, None) or ():
                if isinstance(child, ast.stmt):
                    yield from _statements([child], module_level)
                elif hasattr(child, "body"):  # an except clause, a match case
                    yield from _statements(child.body, module_level)


def imported_names(module: Module, modules: dict[str, Module], module_level: bool = False) -> list[tuple[str, int]]:
    """``(dotted target, line)`` for every import in ``module``: ``import a.b`` gives ``a.b``;
    ``from a import b`` gives ``a.b`` (a module or a name in ``a``). Relative imports are resolved."""
    out = []
    for node in _statements(module.tree.body, module_level):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, node)
            out += [(f"{source}.{alias.name}" if alias.name != "*" else source, node.lineno) for alias in node.names]
    return out


def banned_imports(modules: dict[str, Module], banned=BANNED_IN_CORE) -> list[str]:
    """``"path:line imports X"`` for every import (anywhere in a file, functions included) of a
    module whose top-level name is in ``banned``."""
    found = []
    for module in modules.values():
        for target, line in imported_names(module, modules):
            if target.split(".")[0] in banned:
                found.append(f"{module.path}:{line} imports {target}")
    return found


def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def private_imports(modules: dict[str, Module]) -> list[str]:
    """``"path:line imports X"`` for every import of a private name (``_x``, not ``__x__``) that
    lives in another package than the importer's: another top-level package or another
    subpackage. A private name in a sibling module of the same package is allowed."""
    found = []
    for module in modules.values():
        for target, line in imported_names(module, modules):
            parts = target.split(".")
            for i, part in enumerate(parts):
                if not _private(part) or i == 0:
                    continue
                prefix = ".".join(parts[:i])
                owner = modules.get(prefix)
                home = owner.package if owner is not None else prefix  # unknown (another library): a package
                if home != module.package:
                    found.append(f"{module.path}:{line} imports {target}")
                    break
    return found


def import_graph(modules: dict[str, Module], within: str) -> dict[str, set[str]]:
    """Module-level imports between the modules of package ``within``: ``{module: {imported module}}``.
    ``from a import b`` is an edge to ``a.b`` when that is a module, else to ``a``; importing
    ``a.b`` does not count as importing its parent package ``a``."""
    graph: dict[str, set[str]] = {}
    inside = {name for name in modules if name == within or name.startswith(within + ".")}
    for name in sorted(inside):
        edges = graph.setdefault(name, set())
        for target, _ in imported_names(modules[name], modules, module_level=True):
            while target and target not in inside:
                target = target.rpartition(".")[0]
            if target and target != name:
                edges.add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` as ``[a, b, ..., a]``, or ``None`` when it is acyclic."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


# ------------------------------------------------------------------------ the real packages


def _core_modules_to_import() -> list[str]:
    """Every module of ``mlx_explore`` except framework code (``mlx_explore.frameworks.<name>.*``,
    which imports its framework)."""
    names = []
    for path in sorted((ROOT / "mlx_explore").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[:2] == ("mlx_explore", "frameworks") and len(parts) > 3:
            continue
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def banned_after_importing(names: list[str]) -> list[str]:
    """The modules of :data:`BANNED_IN_CORE` in ``sys.modules`` after importing ``names`` in a fresh
    interpreter (so what other tests imported does not count)."""
    code = textwrap.dedent(f"""
        import importlib, json, sys
        for name in {names!r}:
            importlib.import_module(name)
        banned = {BANNED_IN_CORE!r}
        print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in banned)))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def test_importing_every_core_module_loads_no_interactive_layer():
    names = _core_modules_to_import()
    assert {"mlx_explore", "mlx_explore.runner", "mlx_explore.frameworks", "mlx_explore.cli"} <= set(names)
    assert banned_after_importing(names) == []
    assert {"widgets", "ipywidgets", "plotly"} <= set(banned_after_importing(["widgets.parity"]))  # it can fail


def test_no_core_file_imports_the_interactive_layer():
    assert banned_imports(load_package("mlx_explore")) == []


def test_no_module_imports_a_private_name_of_another_package():
    found = private_imports(load_package("mlx_explore", "widgets"))
    assert [f for f in found if f.rpartition(" imports ")[2] not in ALLOWED_PRIVATE] == []


def test_the_core_has_no_import_cycles():
    graph = import_graph(load_package("mlx_explore"), "mlx_explore")
    assert "mlx_explore.runner" in graph and "mlx_explore.comparison" in graph["mlx_explore.runner"]
    assert find_cycle(graph) is None


def test_the_registry_does_not_know_how_runs_are_launched():
    modules = load_package("mlx_explore")
    targets = {target for target, _ in imported_names(modules["mlx_explore.frameworks"], modules)}  # functions too
    launching = ("mlx_explore.runner", "mlx_explore.child", "mlx_explore.env", "mlx_explore.worker")
    assert not {t for t in targets if t.startswith(launching)}, targets


# ------------------------------------------------------------------ each checker can fail


def test_banned_import_checker_finds_a_widget_import_even_inside_a_function():
    modules = parse_tree({
        "core/__init__.py": "",
        "core/a.py": "import numpy\n\ndef show():\n    import plotly.graph_objects as go\n",
        "core/b.py": "from IPython.display import display\n",
        "core/c.py": "from widgets import ComparisonPanel\n",
    })  # fmt: skip
    assert banned_imports(modules) == [
        "core/a.py:4 imports plotly.graph_objects", "core/b.py:1 imports IPython.display.display",
        "core/c.py:1 imports widgets.ComparisonPanel",
    ]  # fmt: skip


def test_private_import_checker_allows_siblings_and_rejects_other_packages():
    modules = parse_tree({
        "core/__init__.py": "",
        "core/parity.py": "def _curves(): ...\n",
        "core/runner.py": "from .parity import _curves\nfrom . import __version__\n",  # same package: fine
        "core/sub/__init__.py": "def _hidden(): ...\n",
        "core/sub/impl.py": "from ..parity import _curves\n",  # another package (its parent): reported
        "core/user.py": "from .sub import _hidden\nfrom core.sub.impl import thing\n",  # _hidden is in core.sub
        "ui/__init__.py": "",
        "ui/_common.py": "color = 1\n",
        "ui/plot.py": "from ._common import color\nfrom core.parity import _curves\nimport core._private\n",
    })  # fmt: skip
    assert private_imports(modules) == [
        "core/sub/impl.py:1 imports core.parity._curves", "core/user.py:1 imports core.sub._hidden",
        "ui/plot.py:2 imports core.parity._curves", "ui/plot.py:3 imports core._private",
    ]  # fmt: skip


def test_cycle_checker_finds_a_module_level_circle_and_ignores_function_imports():
    modules = parse_tree({
        "core/__init__.py": "from .runner import compare\n__version__ = '1'\n",
        "core/runner.py": "from . import __version__\nfrom .env import info\ndef compare(): ...\n",
        "core/env.py": "def info():\n    from .runner import compare\n",  # inside a function: no edge
        "core/typed.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .runner import compare\n",
    })  # fmt: skip
    graph = import_graph(modules, "core")
    assert graph == {"core": {"core.runner"}, "core.runner": {"core", "core.env"}, "core.env": set(), "core.typed": set()}
    assert find_cycle(graph) == ["core", "core.runner", "core"]
    graph["core.runner"].discard("core")
    assert find_cycle(graph) is None
