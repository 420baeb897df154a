"""The layout rules of docs/architecture.md, read off the code: imports point down, no import is guarded.

DESIGN §3: config → home → reports → runtime → approvals → traceability → evidence → alerts → changecontrol →
common. A lower app that must react to a higher one reads audit events or a task queued on commit; it never imports
upward, and never hides an import behind `except ImportError` or `getattr(module, …, None)`.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest
from django.apps import apps
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LINTER = PYPROJECT["tool"]["importlinter"]
LAYERS = next(c for c in LINTER["contracts"] if c["id"] == "layers")["layers"]
PRODUCT_PACKAGES = LINTER["root_packages"]


def product_modules():
    """Every module of the product (tests, benchmarks and frozen migrations aside)."""
    for package in PRODUCT_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def test_every_import_points_down_the_app_list():
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True) == 0


def test_every_custody_app_has_its_place_in_the_layers():
    custody_apps = [config.name for config in apps.get_app_configs() if (ROOT / config.name).is_dir()]
    assert sorted(custody_apps) == sorted(set(LAYERS) - {"common", "custody_cli"})
    assert LAYERS[0] == "config" and LAYERS[-1] == "common"


def _guards(path: Path, *, root: Path = ROOT) -> list[str]:
    """`except ImportError`, dynamic imports, and `getattr(<imported module>, …)` in one file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    modules = {
        alias.asname or alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PRODUCT_PACKAGES
        for alias in node.names
        if alias.name[:1].islower()
    }
    found = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(root)}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.ExceptHandler) and node.type is not None:
            caught = node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]
            if any(isinstance(name, ast.Name) and name.id in ("ImportError", "ModuleNotFoundError") for name in caught):
                found.append(f"{where} catches an import error")
        if isinstance(node, ast.Call):
            function = node.func
            dotted = ast.unparse(function)
            if dotted in ("importlib.import_module", "import_module", "__import__"):
                found.append(f"{where} imports by name ({dotted})")
            if dotted == "getattr" and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id in modules:
                found.append(f"{where} looks a name up in module {node.args[0].id} with getattr")
    return found


@pytest.mark.parametrize("path", list(product_modules()), ids=lambda path: str(path.relative_to(ROOT)))
def test_no_import_is_guarded(path):
    assert _guards(path) == []


def test_the_guard_check_finds_each_kind_of_guard(tmp_path):
    guarded = tmp_path / "guarded.py"
    guarded.write_text(
        "import importlib\n"
        "from approvals import services\n"
        "try:\n    from evidence import trace\nexcept ImportError:\n    trace = None\n"
        "take = getattr(services, 'trace_baseline_take', None)\n"
        "module = importlib.import_module('approvals.demo')\n"
    )
    found = _guards(guarded, root=tmp_path)
    assert len(found) == 3, found
