"""The one CSV rule: cells a spreadsheet would run as a formula are written as text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fieldsvc.csvout import safe_cell


@pytest.mark.parametrize(("value", "written"), [
    ("=1+1", "'=1+1"), ("+1+1", "'+1+1"), ("-1+cmd|' /C calc'!A0", "'-1+cmd|' /C calc'!A0"),
    ("@SUM(A1:A2)", "'@SUM(A1:A2)"), ("\t=1", "'\t=1"), ("\r=1", "'\r=1"),
    ("-0.5", "-0.5"), ("+3", "+3"), ("1e-3", "1e-3"), ("-.5E+2", "-.5E+2"), ("水稻", "水稻"), ("", ""),
    ("a=b", "a=b"), (-1.5, -1.5), (None, None),
])
def test_safe_cell(value, written):
    assert safe_cell(value) == written


def test_every_csv_writer_goes_through_csvout():
    root = Path(__file__).resolve().parents[3] / "fieldsvc"
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if p.name != "csvout.py" and re.search(r"csv\.(writer|DictWriter)\(", p.read_text())]
    assert offenders == []
