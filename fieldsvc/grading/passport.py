"""The soil passport of a parcel, village or farm park: what a land label's page shows, as of now.

Certificates call ``soil_passport`` (one place) for land labels: per standard in the packs a
conclusion ``{standard, pack, verdict, grade, basis, failing, tested_on}`` and per element
``{analyte, value, unit, limit, verdict}``. A parcel's elements are its own graded values; an
area's are its worst graded parcel per element (the highest value against its limit, so the bar
never flatters the village) with no parcel named. Selenium-rich (DZ/T 0380) is concluded only
where the pack says the values qualify.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select

from ..dbtypes import isoformat
from ..errors import Problem
from ..extensions import db
from ..places.models import Parcel
from .basis import basis_of as basis_detail
from .evaluation import explain
from .models import Grade
from .pack_admin import pack_ref, resolve_pack
from .queries import LEGACY_NOT_ASSESSED, _area_column, area_grade, current_grade

PACKS = ("green_food_soil", "gb15618_2018", "nyt391_fertility", "dzt0380_se_rich")
PASS_FAIL = {"green_food_soil"}  # conclusions that read "meets" / "does not meet"
ONLY_WHEN_QUALIFIED = {"dzt0380_se_rich"}  # said only where the values qualify
FAILING = ("exceeds", "fail", "not_qualified")


def basis_of(grade: Grade | None) -> str:
    """measured | estimated | not_assessed. Grades made before estimation existed carry no basis: measured.

    The one place that reads it (the estimation work adds ``basis`` to grades and their explanation).
    """
    if grade is None:
        return "not_assessed"
    value = getattr(grade, "basis", None) or (grade.explanation or {}).get("basis")
    return value if value in ("measured", "estimated", "not_assessed") else "measured"


def _verdict(pack_code: str, verdict: str, qualified: bool) -> str:
    if pack_code in PASS_FAIL or pack_code in ONLY_WHEN_QUALIFIED:
        if qualified:
            return "meets"
        return "does_not_meet" if verdict == "not_qualified" else verdict
    return verdict if verdict not in ("qualified", "not_qualified") else ("meets" if qualified else "does_not_meet")


def _index(row: dict[str, Any]) -> Decimal:
    try:
        return Decimal(str(row.get("index")))
    except (InvalidOperation, ValueError):
        return Decimal(-1)


def _element(row: dict[str, Any], minimum: bool = False) -> dict[str, Any]:
    """One element's bar: value against limit, and whether the value was measured or estimated (with its σ).

    ``bound`` says which side of the limit is good: ``max`` for a contaminant, ``min`` for a
    threshold the value must reach (Se for selenium-rich land).
    """
    basis = row.get("basis") if row.get("basis") in ("measured", "estimated", "not_assessed") else "measured"
    return {"analyte": row["analyte"], "value": row.get("value"), "qualifier": row.get("qualifier", "="),
            "detection_limit": row.get("detection_limit"),
            "unit": row.get("unit") or "", "limit": row.get("limit"), "verdict": row.get("verdict"),
            "basis": basis, "sigma": row.get("sigma") if basis == "estimated" else None,
            "bound": "min" if minimum else "max"}


def _parcel_grades(kind: str, code: str, pack_code: str) -> list[Grade]:
    return list(db.session.scalars(
        select(Grade).join(Parcel, Parcel.code == Grade.subject_code)
        .where(_area_column(kind) == code, Parcel.deleted_at.is_(None), Grade.subject_type == "parcel",
               Grade.rule_pack == pack_code, Grade.superseded_by.is_(None), Grade.verdict.not_in(LEGACY_NOT_ASSESSED))
        .order_by(Grade.subject_code)))


def _latest(values: Sequence[Any]) -> Any:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def soil_passport(subject_type: str, code: str, packs: Sequence[str] = PACKS) -> dict[str, Any]:
    """``{conclusions, elements, tested_on, since}``; conclusions only for packs that graded the subject.

    :raise Problem: 404 for an unknown subject (from the grading read side).
    """
    conclusions: list[dict[str, Any]] = []
    elements: dict[str, dict[str, Any]] = {}
    tested: list[date] = []
    since: datetime | None = None
    for pack_code in packs:
        try:
            pack = resolve_pack(pack_code)
        except Problem:
            continue  # a pack this instance does not carry
        if subject_type == "parcel":
            g = current_grade("parcel", code, pack.code)
            if g is None or g.verdict in LEGACY_NOT_ASSESSED:
                continue
            rows = explain(g).get("analytes", [])
            grades, qualified, verdict, grade = [g], g.qualified, g.verdict, g.grade
        else:
            grades = _parcel_grades(subject_type, code, pack.code)
            if not grades:
                continue
            ag, area_row = area_grade(subject_type, code, pack)
            # an area's element bars are measured values: an estimate never shows as a test result
            rows = [r for p in grades for r in explain(p).get("analytes", [])
                    if r.get("basis", "measured") == "measured"]
            qualified, grade = ag.qualified, ag.grade
            verdict = ag.verdict  # qualified | not_qualified | not_assessed (below min coverage: never "fails")
            if area_row is not None:
                grades = [area_row, *grades]
        if pack.code in ONLY_WHEN_QUALIFIED and not qualified:
            continue
        bases = {basis_of(g) for g in grades if g.subject_type == "parcel"} or {"measured"}
        basis = "measured" if bases == {"measured"} else "estimated" if "estimated" in bases else sorted(bases)[0]
        failing = sorted({r["analyte"] for r in rows if r.get("verdict") in FAILING})
        day = _latest([g.tested_on for g in grades])
        conclusion = {"standard": pack.standard, "pack": pack.code, "verdict": _verdict(pack.code, verdict, qualified),
                      "grade": grade, "basis": basis, "failing": failing,
                            "tested_on": day.isoformat() if day else None,
                      "rule_pack": {k: v for k, v in pack_ref(pack.code, pack.version).items()
                                    if k in ("code", "version", "verified")}}
        if subject_type != "parcel":  # what the area's grade rests on, parcel by parcel
            counts = Counter(basis_of(g) for g in grades if g.subject_type == "parcel")
            conclusion["parcels_by_basis"] = {k: counts[k] for k in ("measured", "estimated") if counts[k]}
        if subject_type == "parcel" and basis == "estimated":  # the estimate's uncertainty shows with it
            b = basis_detail(grades[0].verdict, grades[0].explanation, grades[0].inputs, pack.data.get("unit", "mg/kg"))
            conclusion["estimate"] = {k: v for k, v in b.to_dict().items() if k != "basis"}
        conclusions.append(conclusion)
        if day:
            tested.append(day)
        if pack.code == packs[0]:
            since = _latest([g.computed_at for g in grades])
        worst: dict[str, dict[str, Any]] = {}
        for row in rows:  # an area: its worst parcel per element, within this pack
            if row.get("analyte") and row.get("limit") is not None:
                held = worst.get(row["analyte"])
                if held is None or _index(row) > _index(held):
                    worst[row["analyte"]] = row
        for analyte, row in worst.items():  # the first pack that judges an element gives its bar
            elements.setdefault(analyte, _element(row, minimum=pack.kind == "se_rich" and analyte == "Se"))
    return {"conclusions": conclusions, "elements": list(elements.values()),
            "tested_on": max(tested).isoformat() if tested else None, "since": isoformat(since)}
