"""The lab domain layer stays plain Python: no Flask, no ORM (DESIGN §2, STYLE §3.3)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LAB = Path(__file__).resolve().parents[3] / "fieldsvc" / "lab"
FORBIDDEN = ("flask", "flask_sqlalchemy", "sqlalchemy", "fieldsvc.extensions")


def imported_modules(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
    return names


def is_forbidden(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in FORBIDDEN) or module.endswith(
        ".models"
    )


PURE = [LAB / name for name in ("analytes.py", "units.py", "values.py", "importing.py", "qc.py", "demo.py")]


@pytest.mark.parametrize("path", PURE, ids=lambda p: p.name)
def test_lab_modules_import_no_flask_or_database(path):
    offenders = [m for m in imported_modules(path) if is_forbidden(m)]
    assert offenders == []


@pytest.mark.parametrize(
    ("source", "forbidden"),
    [
        ("import flask", True),
        ("from flask import g", True),
        ("import sqlalchemy.orm", True),
        ("from flask_sqlalchemy import SQLAlchemy", True),
        ("from fieldsvc.extensions import db", True),
        ("from fieldsvc.lab.models import LabResult", True),
        ("import flasky", False),
        ("from decimal import Decimal", False),
    ],
)
def test_the_purity_check_catches_what_it_should(tmp_path, source, forbidden):
    module = tmp_path / "m.py"
    module.write_text(source + "\n", encoding="utf-8")
    assert any(is_forbidden(m) for m in imported_modules(module)) == forbidden


def test_the_lab_package_is_where_the_check_looks():
    assert {p.name for p in LAB.glob("*.py")} >= {
        "units.py",
        "values.py",
        "importing.py",
        "qc.py",
        "analytes.py",
    }
