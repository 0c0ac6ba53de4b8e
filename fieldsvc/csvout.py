"""Every CSV fieldsvc writes goes through here: one rule against formula injection.

A spreadsheet program runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, in some of
them, a leading tab or carriage return) as a formula: a parcel crop ``=HYPERLINK(...)`` in a
report would become a live link on an official's desktop (OWASP "CSV Injection"). Such a cell is
written with a leading apostrophe, which spreadsheets show as text and do not evaluate. A plain
number (``-0.5``, ``+3``, ``1e-3``) is left alone: it cannot be a formula, and a report's numbers
must stay numbers.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import IO, Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def safe_cell(value: Any) -> Any:
    """``value`` as it may go into a CSV cell (non-text values are left to the csv module)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


class SafeWriter:
    """``csv.writer`` whose every cell passes :func:`safe_cell`."""

    def __init__(self, stream: IO[str], **kwargs: Any) -> None:
        self._writer = csv.writer(stream, **kwargs)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([safe_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(stream: IO[str], **kwargs: Any) -> SafeWriter:
    """The only CSV writer to use in fieldsvc (a test fails on ``csv.writer`` anywhere else)."""
    return SafeWriter(stream, **kwargs)
