"""The exporter and the forwarder share logstream/ (tailer, source contract, wire protocol)
and never import each other; logstream imports neither.

The forwarder image installs forwarder/ and logstream/ without any dependency
(deploy/forwarder/Dockerfile), so those two import only the standard library. Read from the
source (the AST of every module), not by importing, so an import inside a function counts too.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: package -> the first-party packages it must never import
FORBIDDEN = {
    "exporter": {"forwarder"},
    "forwarder": {"exporter"},
    "logstream": {"exporter", "forwarder"},
}
#: packages whose modules may import only the standard library and these packages (the
#: forwarder image installs nothing else; logstream/notify.py talks to inotify through ctypes)
STDLIB_ONLY = {"forwarder": {"forwarder", "logstream"}, "logstream": {"logstream"}}


def imported(path: Path, package: str) -> list[tuple[int, str]]:
    """(line, top-level package) of every import in the module, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            top = package if node.level else (node.module or "").split(".")[0]
            found.append((node.lineno, top))
        elif isinstance(node, ast.Call) and _dynamic_import(node):
            found.append((node.lineno, node.args[0].value.split(".")[0]))
    return found


def _dynamic_import(call: ast.Call) -> bool:
    """importlib.import_module("x") or __import__("x") with a literal name."""
    name = getattr(call.func, "attr", getattr(call.func, "id", ""))
    return (name in ("import_module", "__import__") and bool(call.args)
            and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str))


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_cross_imports(package: str) -> None:
    bad = [f"{path.relative_to(ROOT)}:{line} imports {name}"
           for path in modules(package)
           for line, name in imported(path, package) if name in FORBIDDEN[package]]
    assert modules(package), f"{package}/ has no modules"
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("package", sorted(STDLIB_ONLY))
def test_standard_library_only(package: str) -> None:
    allowed = STDLIB_ONLY[package] | set(sys.stdlib_module_names) | {"__future__"}
    bad = [f"{path.relative_to(ROOT)}:{line} imports {name}"
           for path in modules(package)
           for line, name in imported(path, package) if name not in allowed]
    assert not bad, "\n".join(bad)


def test_the_check_sees_imports(tmp_path: Path) -> None:
    """The walk finds every form of import, nested ones included."""
    module = tmp_path / "m.py"
    module.write_text("import exporter.config\nfrom forwarder import tail\nfrom . import x\n"
                      "def f():\n    from yaml import safe_load\n"
                      "    importlib.import_module('exporter.state')\n")
    assert [name for _, name in imported(module, "logstream")] == [
        "exporter", "forwarder", "logstream", "yaml", "exporter"]
