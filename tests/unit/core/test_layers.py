"""The layer order (docs/architecture.md): a module imports only its own layer and those below.

core < places < devices < media < samples < lab < grading < certificates < adapters

Every ``import`` in ``fieldsvc`` is read from the source (those inside functions too), so an
import made at call time to dodge a cycle is caught like any other. What follows a write in a
higher layer is reached through ``fieldsvc.events``, never by importing upwards.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3] / "fieldsvc"
ORDER = ("core", "places", "devices", "media", "samples", "lab", "grading", "certificates", "adapters")
DOMAINS = ORDER[1:-1]
# Top-level modules and packages of fieldsvc that are not domains. A new one must be placed here.
CORE = {"config", "errors", "dbutil", "dbtypes", "extensions", "sequence", "audit", "auth", "events", "http", "lru",
        "openapi", "schemas", "render", "sqlite_checkpoint", "access", "paging",
        "csvout", "compression"}
ADAPTERS = {"__init__", "handlers", "sync", "openrosa", "console", "field", "ops", "cli", "demo", "housekeeping",
            "models", "exports", "tiles"}
# Inside a domain package these modules are entry points (HTTP, the CLI, the demo loader): adapters.
ENTRY_MODULES = {"views", "public", "cli", "demo"}

# Upward imports still allowed, each with its reason. This list only shrinks.
ALLOWED: dict[tuple[str, str], str] = {}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    parts = module.split(".")
    assert parts[0] == "fieldsvc", module
    if len(parts) == 1:
        return "adapters"
    top = parts[1]
    if top in DOMAINS:
        return "adapters" if len(parts) > 2 and parts[2] in ENTRY_MODULES else top
    if top in CORE:
        return "core"
    if top in ADAPTERS:
        return "adapters"
    raise AssertionError(f"fieldsvc.{top} has no layer: add it to CORE or ADAPTERS in {__file__}")


def imports_of(source: str, module: str, is_package: bool = False) -> list[tuple[int, str, bool]]:
    """``(line, imported module, inside a function)`` for every import of a fieldsvc module."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    tree = ast.parse(source)
    found: list[tuple[int, str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((child.lineno, a.name, in_function) for a in child.names
                             if a.name.split(".")[0] == "fieldsvc")
            elif isinstance(child, ast.ImportFrom):
                base = package[:len(package) - child.level + 1] if child.level else []
                target = ".".join(base + ([child.module] if child.module else []))
                if target.split(".")[0] != "fieldsvc":
                    continue
                if target == "fieldsvc" or child.module is None:  # from . import x: x is the module
                    found.extend((child.lineno, f"{target}.{a.name}", in_function) for a in child.names)
                else:
                    found.append((child.lineno, target, in_function))
            visit(child, nested)

    visit(tree, False)
    return found


def own_modules() -> list[Path]:
    return sorted(ROOT.rglob("*.py"))


def all_imports() -> list[tuple[str, int, str, str, str, bool]]:
    out = []
    for path in own_modules():
        source = module_name(path)
        for line, target, in_function in imports_of(path.read_text(encoding="utf-8"), source,
                                                     path.name == "__init__.py"):
            out.append((source, line, target, layer_of(source), layer_of(_existing(target)), in_function))
    return out


def _existing(target: str) -> str:
    """``fieldsvc.x.y`` where ``y`` may be a name in module ``x`` rather than a module."""
    parts = target.split(".")
    while len(parts) > 1 and not ((ROOT.parent / Path(*parts)).with_suffix(".py").exists()
                                  or (ROOT.parent / Path(*parts) / "__init__.py").exists()):
        parts.pop()
    return ".".join(parts)


def test_every_module_has_a_layer():
    for path in own_modules():
        layer_of(module_name(path))


def test_no_module_imports_a_higher_layer():
    upward = {}
    for source, line, target, src_layer, dst_layer, _ in all_imports():
        if ORDER.index(dst_layer) > ORDER.index(src_layer):
            upward.setdefault((source, _existing(target)), []).append(f"{source}:{line} ({src_layer}) imports "
                                                                     f"{target} ({dst_layer})")
    unexplained = [msg for key, msgs in sorted(upward.items()) if key not in ALLOWED for msg in msgs]
    assert not unexplained, "upward imports (publish an event instead):\n" + "\n".join(unexplained)
    stale = [key for key in ALLOWED if key not in upward]
    assert not stale, f"allowlist entries no longer needed, remove them: {stale}"


def test_domains_import_each_other_only_at_module_load():
    """A call-time import between packages hides a dependency (or a cycle) from the reader."""
    late = [f"{source}:{line} imports {target} inside a function"
            for source, line, target, src_layer, _, in_function in all_imports()
            if in_function and src_layer != "adapters" and target.split(".")[1] != source.split(".")[1]]
    assert not late, "\n".join(late)


def test_no_dynamic_import_of_our_own_modules():
    hits = []
    for path in own_modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                if name in {"importlib.import_module", "import_module", "importlib.util.find_spec", "find_spec",
                            "__import__"}:
                    hits.append(f"{module_name(path)}:{node.lineno} {ast.unparse(node)}")
    assert not hits, "\n".join(hits)


@pytest.mark.parametrize(("text", "expected"), [
    ("def f():\n    from ..grading.services import x\n", [(2, "fieldsvc.grading.services", True)]),
    ("from . import geometry as geo\n", [(1, "fieldsvc.places.geometry", False)]),
    ("import fieldsvc.samples.models\n", [(1, "fieldsvc.samples.models", False)]),
    ("class A:\n    def m(self):\n        import fieldsvc.lab\n", [(3, "fieldsvc.lab", True)]),
])
def test_the_walker_sees_every_kind_of_import(text, expected):
    found = imports_of(text, "fieldsvc.places.services")
    assert found == expected
    assert [layer_of(_existing(t)) for _, t, _ in found] == [t.split(".")[1] for _, t, _ in expected]
