"""The package's shape, checked from its source (ARCHITECTURE.md states these rules).

Every ``import`` / ``from ... import`` inside ``sklearn_imgcls`` (at module
level or inside functions) is read with :mod:`ast`; the rules: no import
circles, no private name imported across a module border, ``_core/`` and
``plugin/`` never reach up into the public modules or ``cli/``, ``builtin/``
uses only the contract and the internals, and no module is over 400 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sklearn_imgcls"
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path):
    """Yield ``(target module, imported names)`` for every intra-package import of one module."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("sklearn_imgcls"):
                continue
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                yield (submodule, ()) if submodule in MODULES else (target, (alias.name,))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("sklearn_imgcls"):
                    yield alias.name, ()


EDGES = {name: {} for name in MODULES}
for _name, _path in MODULES.items():
    for _target, _names in _imports(_name, _path):
        EDGES[_name].setdefault(_target, set()).update(_names)


def _room(module: str) -> str:
    """The folder a module lives in: ``_core``, ``plugin``, ``builtin``, ``cli``, or ``top``."""
    parts = module.split(".")
    is_package = module in MODULES and MODULES[module].name == "__init__.py"
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and is_package) else "top"


def test_the_scan_sees_the_package():
    assert {"sklearn_imgcls._core.base", "sklearn_imgcls.plugin.registry", "sklearn_imgcls.cli.main"} <= set(MODULES)
    assert "sklearn_imgcls.classifier" in EDGES["sklearn_imgcls.cnn"]  # an import the scan must find
    assert "check_dict" in EDGES["sklearn_imgcls.cnn"]["sklearn_imgcls._core.params"]  # with its names
    assert _room("sklearn_imgcls._core.base") == "_core" and _room("sklearn_imgcls.cnn") == "top"


def test_no_import_circles():
    seen: dict[str, int] = {}  # 1: on the current path, 2: done
    circles = []

    def visit(module: str, path: list[str]) -> None:
        seen[module] = 1
        for target in EDGES.get(module, {}):
            if target not in MODULES:
                continue
            if seen.get(target) == 1:
                circles.append(path[path.index(target):] + [target])
            elif target not in seen:
                visit(target, path + [target])
        seen[module] = 2

    for module in MODULES:
        if module not in seen:
            visit(module, [module])
    assert circles == []


def test_no_private_name_crosses_a_module_border():
    crossings = [(module, target, name) for module, targets in EDGES.items() for target, names in targets.items()
                 for name in names if name.startswith("_") and not name.startswith("__")]
    assert crossings == []


@pytest.mark.parametrize(("room", "may_import"), [
    ("_core", {"_core", "plugin"}),
    ("plugin", {"plugin", "_core"}),
    ("builtin", {"plugin", "_core"}),
])
def test_lower_rooms_never_import_upwards(room, may_import):
    upward = [(module, target) for module, targets in EDGES.items() if _room(module) == room
              for target in targets if target in MODULES and target != "sklearn_imgcls"
              and _room(target) not in may_import]
    assert upward == []


def _private_methods() -> dict[str, set[str]]:
    """Private method names (``_x``, not dunders) defined in our classes -> the modules defining them."""
    defined: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name.startswith("_") \
                            and not item.name.endswith("__"):
                        defined.setdefault(item.name, set()).add(name)
    return defined


def test_no_private_method_of_ours_is_called_from_another_module():
    """``estimator._param(...)`` from outside the estimator's module: read a public or fitted attribute instead."""
    defined = _private_methods()
    assert "_param" in defined  # the scan sees the estimators' private helpers
    calls = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Attribute) and node.attr in defined and name not in defined[node.attr]):
                continue
            receiver = node.value
            if isinstance(receiver, ast.Name) and receiver.id in ("self", "cls"):
                continue  # a subclass calling or overriding its base's helper
            if isinstance(receiver, ast.Call) and isinstance(receiver.func, ast.Name) and receiver.func.id == "super":
                continue
            calls.append((name, node.lineno, node.attr))
    assert calls == []


def test_no_module_over_400_lines():
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}
