"""Judging a batch's QC rows: method blanks, duplicate pairs and certified reference materials.

A failing QC item says the lab cannot vouch for that analyte in this batch, so
it *holds* every result of that analyte in the batch for an official (DESIGN
§4.5). Comparisons are exact Decimal arithmetic with the boundary passing
(a duplicate at exactly its limit, a CRM at exactly value ± U); the figures
shown are rounded only for display.

Defaults (ANCHORS §4.8): CNEMC duplicate precision for Cd is 30 % below
0.4 mg/kg and 25 % from 0.4; Hg 50 %; Cu/Pb/Zn/Cr/Ni/As 15 %; others 20 %.
RD here is ``|a − b| / mean × 100`` (the relative *difference* of the pair).
GBW CRMs pass within certified value ± U (k = 2); values printed in
parentheses on the certificate are reference-only and never judged.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fieldsvc.lab.analytes import resolve_analyte
from fieldsvc.lab.importing import ResultRow, sample_code_key

PASS, FAIL, SKIPPED = "pass", "fail", "skipped"
_SHOWN = Decimal("0.01")


@dataclass(frozen=True)
class CertifiedValue:
    """One analyte on a CRM certificate, in the analyte's canonical unit."""

    value: Decimal
    u: Decimal | None = None  # expanded uncertainty (k = 2); None only for reference-only values
    reference_only: bool = False


@dataclass(frozen=True)
class DuplicateBand:
    """Duplicate limit ``limit_pct`` for pairs whose mean is below ``below`` (None: no upper edge)."""

    limit_pct: Decimal
    below: Decimal | None = None


def _bands(*pairs: tuple[str, str | None]) -> tuple[DuplicateBand, ...]:
    return tuple(DuplicateBand(Decimal(pct), Decimal(below) if below else None) for pct, below in pairs)


DEFAULT_DUPLICATE_BANDS: Mapping[str, tuple[DuplicateBand, ...]] = {
    "Cd": _bands(("30", "0.4"), ("25", None)),
    "Hg": _bands(("50", None)),
    **{key: _bands(("15", None)) for key in ("Cu", "Pb", "Zn", "Cr", "Ni", "As")},
}


@dataclass(frozen=True)
class QcRules:
    """Configurable QC limits; analytes without bands use ``default_duplicate_pct``."""

    duplicate_bands: Mapping[str, tuple[DuplicateBand, ...]] = field(
        default_factory=lambda: dict(DEFAULT_DUPLICATE_BANDS)
    )
    default_duplicate_pct: Decimal = Decimal(20)
    # Fallback detection limit per analyte for blanks reported without one.
    blank_limits: Mapping[str, Decimal] = field(default_factory=dict)

    def duplicate_limit(self, analyte: str, level: Decimal) -> Decimal:
        """The RD limit (%) for a pair of ``analyte`` whose mean is ``level``."""
        for band in self.duplicate_bands.get(analyte, ()):
            if band.below is None or level < band.below:
                return band.limit_pct
        return self.default_duplicate_pct


@dataclass(frozen=True)
class QcItem:
    """One judged QC row: what it was, the verdict and the numbers behind it."""

    kind: str  # "blank" | "duplicate" | "crm"
    analyte: str
    line: int
    sample_code: str
    status: str  # "pass" | "fail" | "skipped"
    reason: str  # stable snake_case code
    message: str
    numbers: Mapping[str, Decimal | str | None] = field(default_factory=dict)

    @property
    def passed(self) -> bool | None:
        return None if self.status == SKIPPED else self.status == PASS

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "analyte": self.analyte,
            "line": self.line,
            "sample_code": self.sample_code,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            **self.numbers,
        }


@dataclass(frozen=True)
class QcOutcome:
    items: list[QcItem]
    held: dict[str, list[dict[str, Any]]]

    def is_held(self, analyte: str) -> bool:
        return analyte in self.held


def _shown(value: Decimal) -> Decimal:
    return value.quantize(_SHOWN)


def _item(row: ResultRow, kind: str, status: str, reason: str, message: str, **numbers: Any) -> QcItem:
    return QcItem(kind, row.analyte, row.line, row.sample_code, status, reason, message, numbers)


def judge_blank(row: ResultRow, rules: QcRules) -> QcItem:
    """A method blank passes when it is not detected or at most its detection limit."""
    if row.censored:
        return _item(
            row, "blank", PASS, "blank_not_detected", "Blank not detected.", limit=row.detection_limit
        )
    limit = row.detection_limit if row.detection_limit is not None else rules.blank_limits.get(row.analyte)
    if limit is None:
        message = "Blank has a value but no detection limit to judge it against."
        return _item(row, "blank", FAIL, "blank_without_limit", message, measured=row.value)
    assert row.value is not None
    if row.value > limit:
        message = f"Blank {row.value} {row.unit} is above the detection limit {limit}."
        return _item(
            row, "blank", FAIL, "blank_above_detection_limit", message, measured=row.value, limit=limit
        )
    message = "Blank within the detection limit."
    return _item(row, "blank", PASS, "blank_within_limit", message, measured=row.value, limit=limit)


def judge_duplicate(row: ResultRow, original: ResultRow | None, rules: QcRules) -> QcItem:
    """RD of a duplicate and its original against the limit for the pair's concentration band."""
    if original is None:
        message = f"Original sample {row.duplicate_of} of this duplicate is not in the batch."
        return _item(
            row, "duplicate", FAIL, "duplicate_original_missing", message, duplicate_of=row.duplicate_of
        )
    if row.censored or original.censored:
        message = "Censored pair (below detection limit); not judged."
        return _item(
            row, "duplicate", SKIPPED, "duplicate_censored", message, duplicate_of=original.sample_code
        )
    assert row.value is not None and original.value is not None
    a, b = original.value, row.value
    mean = (a + b) / 2
    limit = rules.duplicate_limit(row.analyte, mean)
    diff = abs(a - b)
    # Cross-multiplied so the boundary case is exact: RD ≤ limit ⇔ |a−b|·100 ≤ limit·mean.
    ok = diff * 100 <= limit * mean
    rd = diff * 100 / mean if mean else Decimal(0)
    numbers = {"duplicate_of": original.sample_code, "original": a, "duplicate": b, "mean": mean}
    numbers |= {"rd_pct": _shown(rd), "limit_pct": limit}
    if ok:
        return _item(
            row, "duplicate", PASS, "duplicate_within_limit", f"RD {_shown(rd)} % ≤ {limit} %.", **numbers
        )
    message = f"RD {_shown(rd)} % exceeds {limit} %."
    return _item(row, "duplicate", FAIL, "duplicate_rd_exceeded", message, **numbers)


def judge_crm(row: ResultRow, certified: CertifiedValue | None, known_crm: bool) -> QcItem:
    """A CRM result passes within certified value ± U; reference-only values are never judged."""
    numbers: dict[str, Any] = {"crm": row.crm}
    if not known_crm:
        message = f"Reference material {row.crm} is not registered."
        return _item(row, "crm", FAIL, "crm_unknown", message, **numbers)
    if certified is None:
        message = f"{row.crm} has no certified value for {row.analyte}; not judged."
        return _item(row, "crm", SKIPPED, "crm_not_certified", message, **numbers)
    numbers["certified"] = certified.value
    if certified.reference_only or certified.u is None:
        message = f"{row.crm} gives {row.analyte} as a reference value only; not judged."
        return _item(row, "crm", SKIPPED, "crm_reference_only", message, **numbers)
    low, high = certified.value - certified.u, certified.value + certified.u
    numbers |= {"u": certified.u, "low": low, "high": high}
    if row.censored:
        assert row.detection_limit is not None
        numbers["limit"] = row.detection_limit
        if row.detection_limit < low:
            message = f"Not detected (<{row.detection_limit}) although certified at {low}–{high}."
            return _item(row, "crm", FAIL, "crm_out_of_range", message, **numbers)
        return _item(row, "crm", SKIPPED, "crm_censored", "Censored CRM result; not judged.", **numbers)
    assert row.value is not None
    numbers["measured"] = row.value
    if low <= row.value <= high:
        return _item(row, "crm", PASS, "crm_within_range", f"{row.value} within {low}–{high}.", **numbers)
    message = f"{row.value} outside certified {low}–{high}."
    return _item(row, "crm", FAIL, "crm_out_of_range", message, **numbers)


def _crm_key(code: str) -> str:
    return unicodedata.normalize("NFKC", code).strip().casefold()


def _certified(crm: Mapping[str, CertifiedValue], analyte: str) -> CertifiedValue | None:
    """The certificate's entry for ``analyte``, whether keyed by canonical key or an alias."""
    if analyte in crm:
        return crm[analyte]
    for name, value in crm.items():
        found = resolve_analyte(name)
        if found is not None and found.key == analyte:
            return value
    return None


def judge_qc(
    rows: Sequence[ResultRow],
    crms: Mapping[str, Mapping[str, CertifiedValue]],
    rules: QcRules | None = None,
) -> QcOutcome:
    """Judge every QC row in a batch; a failing item holds its analyte's results in the batch."""
    rules = rules or QcRules()
    originals = {(r.sample_code_key, r.analyte): r for r in rows if r.qc_type is None}
    registered = {_crm_key(code): values for code, values in crms.items()}
    items: list[QcItem] = []
    for row in rows:
        if row.qc_type == "blank":
            items.append(judge_blank(row, rules))
        elif row.qc_type == "duplicate":
            original = originals.get((sample_code_key(row.duplicate_of or ""), row.analyte))
            items.append(judge_duplicate(row, original, rules))
        elif row.qc_type == "crm":
            certificate = registered.get(_crm_key(row.crm or ""))
            certified = _certified(certificate, row.analyte) if certificate is not None else None
            items.append(judge_crm(row, certified, certificate is not None))
    held: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        if item.status == FAIL:
            held.setdefault(item.analyte, []).append(item.to_dict())
    return QcOutcome(items, held)
