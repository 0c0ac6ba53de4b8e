"""The grading package stays plain Python: no Flask, no Flask-SQLAlchemy, no SQLAlchemy."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import fieldsvc.grading

FORBIDDEN = {"flask", "flask_sqlalchemy", "sqlalchemy"}
PURE = ("__init__.py", "rules.py", "grade.py", "rollup.py", "fingerprint.py", "reports.py")
MODULES = [Path(fieldsvc.grading.__file__).parent / name for name in PURE]


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_the_grading_modules_are_found():
    assert {"rules.py", "grade.py", "rollup.py"} <= {p.name for p in MODULES}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_grading_module_imports_no_web_or_database_framework(path):
    assert imported_roots(path) & FORBIDDEN == set()


def test_the_check_itself_catches_a_forbidden_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom flask import g\nimport sqlalchemy.orm as orm\n", encoding="utf-8")
    assert imported_roots(bad) & FORBIDDEN == {"flask", "sqlalchemy"}
