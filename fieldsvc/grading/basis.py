"""What a parcel grade rests on, in words: measured, estimated (± σ, from N samples), not assessed.

DESIGN §4.6 and the issue on survey density: wherever a grade shows, its basis shows too, and an
estimate shows its uncertainty. The console, the reports, certificate reasons and the public
page all say it the same way, so the words live here (zh + en), below all of them in the layer
order. Pure: no Flask, no database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MEASURED, ESTIMATED, NOT_ASSESSED = "measured", "estimated", "not_assessed"
_NOT_ASSESSED_VERDICTS = ("not_assessed", "not_graded")  # not_graded: rows from before the rename

WORDS: dict[str, dict[str, str]] = {
    "zh": {MEASURED: "实测", ESTIMATED: "插值估算", NOT_ASSESSED: "未评价",
           "estimated_detail": "插值估算（{analyte} ± {sigma}，据 {n} 个样点）",
           "estimated_samples": "插值估算（据 {n} 个样点）",
           "area_parcels": "实测 {measured} 块、插值估算 {estimated} 块"},
    "en": {MEASURED: "measured", ESTIMATED: "estimated", NOT_ASSESSED: "not assessed",
           "estimated_detail": "estimated ({analyte} ± {sigma}, from {n} samples)",
           "estimated_samples": "estimated (from {n} samples)",
           "area_parcels": "{measured} parcels measured, {estimated} estimated"},
}


@dataclass(frozen=True)
class Basis:
    """One parcel grade's basis; for an estimate, the deciding analyte's σ and how many samples."""

    basis: str
    analyte: str | None = None
    sigma: float | None = None
    unit: str = ""
    samples: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"basis": self.basis}
        if self.basis == ESTIMATED:
            out.update(analyte=self.analyte, sigma=self.sigma, unit=self.unit, samples=self.samples)
        return out


# An estimated parcel's analyte row as a county run stores it: a JSON array in this order
# (``exceeding`` only where a neighbour exceeds its own limit; absent values null), the parcel's
# estimated pH once beside the rows (``ph``). Older grades stored each row as an object with
# these keys. ``stored_rows`` reads both.
ROW_COLUMNS = ("analyte", "basis", "method", "value", "sigma", "lower", "upper", "neighbour_set", "limit", "verdict",
               "reason", "exceeding")
_ROW_KEYS = {  # the keys each kind of row has, in order (an object row had exactly these)
    ESTIMATED: ("analyte", "basis", "method", "value", "sigma", "lower", "upper", "neighbour_set", "limit", "verdict",
                "reason", "ph", "exceeding"),
    "too_few_neighbours": ("analyte", "basis", "reason", "neighbour_set", "verdict", "exceeding"),
    "ph_not_assessed": ("analyte", "basis", "method", "value", "sigma", "lower", "upper", "neighbour_set", "verdict",
                        "reason", "exceeding"),
}


def stored_rows(explanation: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """An explanation's analyte rows as objects, whichever form stored them: an estimated
    parcel's arrays (``ROW_COLUMNS``) become the objects older grades stored (the estimated rows
    take the parcel's ``ph``); object rows (measured, expanded, older) are returned as they are."""
    explanation = explanation or {}
    out = []
    for r in explanation.get("analytes") or []:
        if not isinstance(r, list):
            out.append(r)
            continue
        row = dict(zip(ROW_COLUMNS, r, strict=False))
        keys = _ROW_KEYS[ESTIMATED] if row["basis"] == ESTIMATED else _ROW_KEYS.get(row.get("reason"), ROW_COLUMNS)
        row["ph"] = explanation.get("ph")
        out.append({k: row[k] for k in keys if k in row})
    return out


def _ratio(row: Mapping[str, Any]) -> float:
    """How close an estimated row's upper bound comes to its limit (the deciding analyte has the most)."""
    try:
        return float(row.get("upper", row.get("value"))) / float(row["limit"])
    except (TypeError, ValueError, KeyError, ZeroDivisionError):
        return -1.0


def basis_of(verdict: str | None, explanation: Mapping[str, Any] | None, inputs: Mapping[str, Any] | None,
             unit: str = "mg/kg") -> Basis:
    """The basis of a stored parcel grade (``None`` verdict: no grade row, not assessed).

    Grades made before estimation existed carry no ``basis``: they are measured. For an estimate
    the analyte shown is the one whose upper bound comes closest to (or furthest past) its limit,
    that is, the one that decides the verdict; N is the distinct neighbour samples used.
    """
    if verdict is None or verdict in _NOT_ASSESSED_VERDICTS:
        return Basis(NOT_ASSESSED)
    explanation = explanation or {}
    basis = explanation.get("basis") or MEASURED
    if basis != ESTIMATED:
        return Basis(basis if basis in (MEASURED, NOT_ASSESSED) else MEASURED)
    rows: Sequence[Mapping[str, Any]] = [r for r in stored_rows(explanation)
                                          if r.get("basis") == ESTIMATED and r.get("sigma") is not None]
    neighbours = (inputs or {}).get("neighbours") or _neighbour_codes(explanation, rows)
    if not rows:
        return Basis(ESTIMATED, samples=len(neighbours))
    worst = max(rows, key=lambda r: (_ratio(r), r.get("analyte") or ""))
    return Basis(ESTIMATED, worst.get("analyte"), float(worst["sigma"]), unit, len(neighbours))


def _neighbour_codes(explanation: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The distinct samples an estimate used: its stored neighbour sets, or (expanded) its rows'."""
    sets = explanation.get("neighbour_sets")
    if sets is not None:
        return sorted({c for nb in sets for c in nb.get("samples") or ()})
    return sorted({n.get("sample") for r in rows for n in r.get("neighbours") or []})


def area_basis_text(measured: int, estimated: int, lang: str) -> str:
    """An area's grade rests on parcels: "实测 2 块、插值估算 57 块" / "2 parcels measured, 57 estimated"."""
    return WORDS.get(lang, WORDS["en"])["area_parcels"].format(measured=measured, estimated=estimated)


def value_pm(value: float, sigma: float) -> str:
    """An estimate and its σ at the σ's precision: ``0.180 ± 0.036`` (never ``0.1797 ± 0.03639``)."""
    s = sigma_text(sigma)
    decimals = len(s.split(".")[1]) if "." in s and "e" not in s else 0
    return f"{value:.{decimals}f} ± {s}"


def sigma_text(sigma: float) -> str:
    """Two significant figures: enough to read an interval, never a 12-digit float."""
    if sigma == 0:
        return "0"
    return f"{sigma:.2g}" if abs(sigma) < 1000 else f"{sigma:.0f}"


def basis_text(b: Basis, lang: str) -> str:
    """"measured", "estimated (Cd ± 0.031 mg/kg, from 12 samples)", "not assessed" in zh or en."""
    words = WORDS.get(lang, WORDS["en"])
    if b.basis != ESTIMATED:
        return words.get(b.basis, words[NOT_ASSESSED])
    if b.analyte is None or b.sigma is None:
        return words["estimated_samples"].format(n=b.samples)
    sigma = f"{sigma_text(b.sigma)} {b.unit}".strip() if b.analyte != "pH" else sigma_text(b.sigma)
    return words["estimated_detail"].format(analyte=b.analyte, sigma=sigma, n=b.samples)
