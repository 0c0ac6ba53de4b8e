"""Read-only queries for the console's lab workspace and review pages (nothing here writes).

Every read of results goes through ``scoped_results`` — the one place these pages apply county
scoping (``lab.services.result_scope``, that is ``fieldsvc.access``). Imports are listed as
``GET /api/v1/lab/imports`` lists them (``lab.services.import_scope``); their result counts are scoped.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Sequence

from sqlalchemy import ColumnElement, and_, func, select

from ..auth.principal import Actor
from ..errors import Problem
from ..extensions import db
from ..grading.pack_admin import resolve_pack
from ..lab.models import LabImport, LabResult
from ..lab.services import import_scope, result_scope
from ..places.models import Parcel
from ..samples.models import Sample

REVIEW_PAGE = 300  # result rows on one review page (the bulk action may cover the whole import)


def scoped_results(actor: Actor) -> ColumnElement[bool]:
    """The results this account may see (the console's single scoping call for lab data)."""
    return and_(*result_scope(actor))


def _reviewable() -> tuple[ColumnElement[bool], ...]:
    return (LabResult.status == "pending", LabResult.superseded_by.is_(None), LabResult.qc_type.is_(None))


def status_counts(actor: Actor, import_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Per import: visible results by status (QC rows left out), and how many are QC-held or held."""
    if not import_ids:
        return {}
    out: dict[int, dict[str, int]] = {i: {} for i in import_ids}
    stmt = (select(LabResult.import_id, LabResult.status, LabResult.qc_hold, LabResult.sample_id.is_(None),
                   func.count())
            .where(LabResult.import_id.in_(import_ids), LabResult.qc_type.is_(None), scoped_results(actor))
            .group_by(LabResult.import_id, LabResult.status, LabResult.qc_hold, LabResult.sample_id.is_(None)))
    for import_id, status, qc_hold, held, n in db.session.execute(stmt):
        counts = out[import_id]
        counts[status] = counts.get(status, 0) + n
        if status == "pending" and qc_hold:
            counts["qc_hold"] = counts.get("qc_hold", 0) + n
        elif status == "pending" and held:
            counts["held"] = counts.get("held", 0) + n
    return out


def qc_state(lab_import: LabImport) -> str:
    """``fail`` (an analyte is held in this batch), ``pass`` (QC rows, none failing) or ``none``."""
    items = (lab_import.outcomes or {}).get("qc", [])
    if lab_import.qc_held or any(i.get("status") == "fail" for i in items):
        return "fail"
    return "pass" if lab_import.qc_rows else "none"


def imports_page(actor: Actor, before: int | None, size: int) -> tuple[list[LabImport], int | None]:
    """Imports this account may see, newest first; the id to pass as ``before`` for the next (older) page."""
    stmt = select(LabImport).where(*import_scope(actor)).order_by(LabImport.id.desc()).limit(size + 1)
    if before is not None:
        stmt = stmt.where(LabImport.id < before)
    rows = list(db.session.scalars(stmt))
    return rows[:size], (rows[size - 1].id if len(rows) > size else None)


def imports_with_pending(actor: Actor, limit: int = 100) -> list[tuple[LabImport, int]]:
    """Imports that still have visible results to review, oldest first, with how many."""
    stmt = (select(LabResult.import_id, func.count()).where(*_reviewable(), scoped_results(actor))
            .group_by(LabResult.import_id).order_by(LabResult.import_id).limit(limit))
    pending = dict(db.session.execute(stmt).all())
    imports = db.session.scalars(select(LabImport).where(LabImport.id.in_(list(pending)),
                                                         *import_scope(actor))).all()
    return sorted(((i, pending[i.id]) for i in imports), key=lambda p: p[0].id)


def reviewable_ids(actor: Actor, import_id: int) -> list[str]:
    """Every pending, current, non-QC result of one import this account may see (for "all in import")."""
    stmt = (select(LabResult.id).where(LabResult.import_id == import_id, *_reviewable(), scoped_results(actor))
            .order_by(LabResult.id))
    return [str(i) for i in db.session.scalars(stmt)]


@dataclass
class ReviewRow:
    result: LabResult
    parcel: str | None
    land_use: str | None
    ph: Decimal | None
    limit: Decimal | None
    index: Decimal | None  # value (or half the detection limit) ÷ limit
    exceeds: bool


def review_rows(actor: Actor, import_id: int, after: int | None, size: int = REVIEW_PAGE
                ) -> tuple[list[ReviewRow], int | None]:
    """One page of an import's results to review, each judged against the default pack's limit for
    its parcel's land use and its sample's pH (the strictest band when no pH was measured)."""
    stmt = (select(LabResult, Sample.parcel_code, Parcel.land_use)
            .outerjoin(Sample, Sample.id == LabResult.sample_id)
            .outerjoin(Parcel, Parcel.code == Sample.parcel_code)
            .where(LabResult.import_id == import_id, *_reviewable(), scoped_results(actor))
            .order_by(LabResult.id).limit(size + 1))
    if after is not None:
        stmt = stmt.where(LabResult.id > after)
    found = db.session.execute(stmt).all()
    more = len(found) > size
    found = found[:size]
    phs = _ph_of([r.sample_id for r, _, _ in found if r.sample_id])
    pack = resolve_pack(None)
    rows = []
    for result, parcel, land_use in found:
        ph = phs.get(result.sample_id) if result.sample_id else None
        limit = limit_for(pack, land_use, result.analyte, ph)
        index = None
        if limit:
            measured = _decimal(result.value) if result.qualifier != "<" else None
            if measured is None and result.detection_limit:
                measured = (_decimal(result.detection_limit) or Decimal(0)) / 2
            index = measured / limit if measured is not None else None
        exceeds = bool(index is not None and result.qualifier != "<" and index > 1)
        rows.append(ReviewRow(result, parcel, land_use, ph, limit, index, exceeds))
    return rows, (found[-1][0].id if more and found else None)


def _ph_of(sample_ids: Sequence[str]) -> dict[str, Decimal]:
    """Each sample's current pH (any review status: the reviewer judges before approving)."""
    out: dict[str, Decimal] = {}
    ids = sorted(set(sample_ids))
    for start in range(0, len(ids), 500):
        stmt = select(LabResult.sample_id, LabResult.value).where(
            LabResult.sample_id.in_(ids[start:start + 500]), LabResult.analyte == "pH",
            LabResult.superseded_by.is_(None), LabResult.status != "rejected")
        for sid, value in db.session.execute(stmt):
            if _decimal(value) is not None:
                out[sid] = _decimal(value)
    return out


def _decimal(text: str | None) -> Decimal | None:
    try:
        return Decimal(text) if text is not None else None
    except InvalidOperation:
        return None


def limit_for(pack: Any, land_use: str | None, analyte: str, ph: Decimal | None) -> Decimal | None:
    """The pack's limit for an analyte on a land use at a pH; without pH the strictest band's."""
    if not land_use or land_use not in pack.land_uses:
        return None
    try:
        table = pack.ph_table(land_use)
    except Problem:  # a pack kind without pH tables (fertility, Se) has no limits to highlight
        return None
    if analyte not in table.analytes:
        return None
    i = table.analytes.index(analyte)
    if ph is not None:
        return table.row_for(ph)[i][0]
    limits = [row[i][0] for row in table.rows if row[i][0] is not None]
    return min(limits) if limits else None
