"""Reading one result cell: a number, or a censored "below the limit" value.

Chinese labs write a non-detect at least six ways (``<0.05``, ``＜0.05``,
``0.05L``, ``3(L)``, ``ND``, ``未检出``). Whatever the spelling, a censored value
comes out as ``qualifier="<"`` with its limit and **no value**: it must never
become 0 or a number, or a non-detect could count as a measurement.

Decisions:
- ``≤0.05`` and ``<=0.05`` are censored like ``<0.05``: a lab writes them for a
  result at or below its limit, which is never a quantified value.
- ``>`` (above the working range) is refused: the sample must be diluted and
  re-measured, there is no number to store.
- A lone comma is a decimal comma (``0,05``); a comma *and* a point is refused
  as ambiguous (``1,234.5`` could be either convention).
- Values must be finite, not negative and below 10⁹ (SENAITE's default upper
  detection limit): ``1e999`` is a typo, not a soil.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache

MAX_VALUE = Decimal("1e9")

_NUMBER_RE = re.compile(r"^(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?$")
_NUMBER = r"[\d.,]+(?:e[+-]?\d+)?"  # loose: to_decimal() checks it strictly
_LESS = re.compile(rf"^(?:<|≤|<=)(?P<n>{_NUMBER})$")
_L_SUFFIX = re.compile(rf"^(?P<n>{_NUMBER})(?:l|\(l\))$")
_ND_WITH_LIMIT = re.compile(rf"^(?:nd|n\.d\.?|未检出)\((?:<|≤|<=)?(?P<n>{_NUMBER})\)$")
_ND_WORDS = frozenset({"nd", "n.d", "n.d.", "未检出", "<dl", "<lod", "<mdl", "<检出限", "低于检出限", "bdl"})


class ValueParseError(ValueError):
    """A cell that is not a result; ``field`` says which input was wrong."""

    def __init__(self, message: str, field: str = "value") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class ParsedValue:
    qualifier: str  # "=" measured, "<" censored below ``limit``
    value: Decimal | None
    limit: Decimal | None

    @property
    def censored(self) -> bool:
        return self.qualifier == "<"


def _fold(text: str) -> str:
    """Full-width → ASCII, case folded, spaces dropped, so ``＜ ０．０５`` reads as ``<0.05``."""
    if not text.isascii():  # most cells are ASCII, and NFKC leaves those alone
        text = unicodedata.normalize("NFKC", text).casefold().replace("−", "-")
    return "".join(text.lower().split())


def to_decimal(text: str, what: str = "value") -> Decimal:
    """A finite, non-negative, sane Decimal from already folded text."""
    if "," in text:
        if "." in text or text.count(",") > 1:
            raise ValueParseError(f"{what} {text!r} mixes ',' and '.'; write plain digits like 1234.5.", what)
        text = text.replace(",", ".")
    if text.startswith("-"):
        raise ValueParseError(
            f"{what} {text!r} is negative; report a censored value like <0.05 instead.", what
        )
    if not _NUMBER_RE.match(text):
        raise ValueParseError(f"{what} {text!r} is not a number.", what)
    try:
        number = Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the pattern above admits only valid literals
        raise ValueParseError(f"{what} {text!r} is not a number.", what) from exc
    if not number.is_finite() or number >= MAX_VALUE:
        raise ValueParseError(f"{what} {text!r} is out of range (must be below 1e9).", what)
    return number


@lru_cache(maxsize=1024)  # a file repeats a handful of limits on every row
def parse_detection_limit(text: str | None) -> Decimal | None:
    """The detection-limit column: empty, or a number above zero."""
    folded = _fold(text or "")
    if not folded:
        return None
    limit = to_decimal(folded, "detection_limit")
    if limit == 0:
        raise ValueParseError("detection_limit must be above zero.", "detection_limit")
    return limit


def _censored(limit_text: str) -> ParsedValue:
    limit = to_decimal(limit_text)
    if limit == 0:
        raise ValueParseError("A censored value needs a limit above zero (got <0).")
    return ParsedValue("<", None, limit)


def parse_value(text: str, detection_limit: str | None = None) -> ParsedValue:
    """Parse a result cell; ``detection_limit`` is the row's detection-limit column.

    :raise ValueParseError: (a ``ValueError``) with a message a lab analyst can act on.
    """
    folded = _fold(text or "")
    dl = parse_detection_limit(detection_limit)
    if not folded:
        raise ValueParseError("value is empty.")
    if _NUMBER_RE.match(folded):  # the common case first
        return ParsedValue("=", to_decimal(folded), None)
    if folded.startswith(">") or folded.startswith("≥"):
        raise ValueParseError(f"{text.strip()!r} is above the working range; dilute and re-measure.")
    for pattern in (_LESS, _L_SUFFIX, _ND_WITH_LIMIT):
        match = pattern.match(folded)
        if match:
            return _censored(match["n"])
    if folded in _ND_WORDS:
        if dl is None:
            raise ValueParseError(
                f"{text.strip()!r} needs a detection limit, but the detection-limit column is empty."
            )
        return ParsedValue("<", None, dl)
    return ParsedValue("=", to_decimal(folded), None)
