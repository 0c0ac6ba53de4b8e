"""Rows for the report renderers: an area's live parcels with their current grade."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..extensions import db
from ..places.models import Parcel
from .basis import basis_of, basis_text
from .models import Grade
from .queries import LEGACY_NOT_ASSESSED, _area_column
from .rules import RulePack


def report_rows(kind: str, code: str, pack: RulePack) -> list[dict[str, Any]]:
    """The area's live parcels with their current grade, for the report renderers (plain dicts)."""
    grades = {g.subject_code: g for g in db.session.execute(
        select(Grade.subject_code, Grade.grade, Grade.verdict, Grade.qualified, Grade.limiting, Grade.tested_on,
               Grade.strict_control, Grade.explanation, Grade.inputs)
        .join(Parcel, Parcel.code == Grade.subject_code)
        .where(_area_column(kind) == code, Grade.subject_type == "parcel", Grade.rule_pack == pack.code,
               Grade.superseded_by.is_(None)))}
    rows = []
    for p in db.session.execute(select(Parcel.code, Parcel.village_code, Parcel.farm_park_code, Parcel.land_use,
                                       Parcel.crop, Parcel.area_m2, Parcel.geometry_json)
                                .where(_area_column(kind) == code, Parcel.deleted_at.is_(None))
                                .order_by(Parcel.code)):
        g = grades.get(p.code)
        graded = g is not None and g.verdict not in LEGACY_NOT_ASSESSED
        rows.append({"code": p.code, "village": p.village_code, "farm_park": p.farm_park_code,
                     "land_use": p.land_use, "crop": p.crop, "area_m2": p.area_m2, "geometry_json": p.geometry_json,
                     "verdict": g.verdict if graded else "not_assessed", "grade": g.grade if graded else None,
                     "qualified": bool(g.qualified) if graded else False,
                     "limiting": list(g.limiting or []) if graded else [],
                     "strict_control": bool(g.strict_control) if graded else False,
                     "tested_on": g.tested_on.isoformat() if graded and g.tested_on else None,
                     **_basis(g if graded else None, pack)})
    return rows


def _basis(g: Any, pack: RulePack) -> dict[str, Any]:
    """``basis`` (measured | estimated | not_assessed) and, for an estimate, its σ and sample count."""
    b = basis_of(g.verdict if g is not None else None, g.explanation if g is not None else None,
                 g.inputs if g is not None else None, pack.data.get("unit", "mg/kg"))
    return {"basis": b.basis, "basis_analyte": b.analyte, "sigma": b.sigma,
            "neighbour_samples": b.samples or None, "basis_text": basis_text(b, "en"),
            "basis_text_zh": basis_text(b, "zh")}
