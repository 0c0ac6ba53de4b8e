"""The pure domain modules must stay importable without Flask or a database (DESIGN §2, STYLE §3.3)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PURE_MODULES = [
    "fieldsvc/sync/merge.py",
    "fieldsvc/sync/cursor.py",
    "fieldsvc/samples/validation.py",
    "fieldsvc/samples/content.py",
]
FORBIDDEN = {"flask", "flask_sqlalchemy", "flask_migrate", "sqlalchemy", "alembic", "werkzeug", "marshmallow"}
FORBIDDEN_LOCAL = {"extensions", "models", "views", "services", "schemas", "http"}


def imported_modules(source: str) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.append("." * node.level + (node.module or ""))
            names.extend("." * node.level + (node.module or "") + "." + alias.name for alias in node.names)
    return names


def is_forbidden(name: str) -> bool:
    parts = [part for part in name.split(".") if part]
    return bool(parts) and (parts[0] in FORBIDDEN or any(part in FORBIDDEN_LOCAL for part in parts))


@pytest.mark.parametrize("path", PURE_MODULES)
def test_pure_module_imports_no_flask_or_database(path):
    imports = imported_modules((ROOT / path).read_text(encoding="utf-8"))
    assert imports, "a pure module that imports nothing is suspicious: is the path right?"
    assert [name for name in imports if is_forbidden(name)] == []


@pytest.mark.parametrize(
    ("source", "forbidden"),
    [
        ("import flask", True),
        ("from flask import current_app", True),
        ("import sqlalchemy.orm as orm", True),
        ("from flask_sqlalchemy import SQLAlchemy", True),
        ("from fieldsvc.extensions import db", True),
        ("from ..samples import models", True),
        ("from .models import Sample", True),
        ("def f():\n    import flask", True),
        ("import hashlib\nfrom fieldsvc.errors import Problem", False),
        ("from fieldsvc.samples.content import canonical_field", False),
    ],
)
def test_the_import_check_itself_catches_framework_imports(source, forbidden):
    assert any(is_forbidden(name) for name in imported_modules(source)) is forbidden
