"""Lab results: analytes, units, censored values, file import and batch QC.

Pure Python (no Flask, no database): the HTTP layer and services call these
functions and store what they return.
"""

from __future__ import annotations

from fieldsvc.lab.analytes import ANALYTES, Analyte, resolve_analyte
from fieldsvc.lab.importing import (
    ParseReport,
    ResultRow,
    RowError,
    Table,
    parse_results,
    read_table,
    sha256_of,
)
from fieldsvc.lab.qc import CertifiedValue, QcOutcome, QcRules, judge_qc
from fieldsvc.lab.units import UnitError, convert
from fieldsvc.lab.values import ParsedValue, ValueParseError, parse_value

__all__ = [
    "ANALYTES",
    "Analyte",
    "CertifiedValue",
    "ParseReport",
    "ParsedValue",
    "QcOutcome",
    "QcRules",
    "ResultRow",
    "RowError",
    "Table",
    "UnitError",
    "ValueParseError",
    "convert",
    "judge_qc",
    "parse_results",
    "parse_value",
    "read_table",
    "resolve_analyte",
    "sha256_of",
]
