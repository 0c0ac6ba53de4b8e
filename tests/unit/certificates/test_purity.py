from __future__ import annotations

import ast
from pathlib import Path

import pytest

import fieldsvc.certificates

PACKAGE = Path(fieldsvc.certificates.__file__).parent
ROOT = PACKAGE.parent
FORBIDDEN = {"flask", "flask_sqlalchemy", "flask_migrate", "sqlalchemy"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("name", ["certificates/codes.py", "certificates/signing.py", "certificates/pdf.py",
                                  "certificates/__init__.py", "render/qr.py", "render/fonts.py", "render/__init__.py"])
def test_certificate_domain_modules_import_no_flask_or_database(name):
    """The drawing leaves (QR, font) moved to ``fieldsvc/render``; they stay as pure."""
    assert not imported_roots(ROOT / name) & FORBIDDEN


def test_the_purity_check_itself_sees_imports(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text("import os\nfrom flask import g\nimport sqlalchemy.orm\n")
    assert imported_roots(sample) & FORBIDDEN == {"flask", "sqlalchemy"}
