"""The read side of grading: subjects, current parcel and area grades, history items and the
small grade summaries of parcel lists."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, literal_column, select

from .. import access
from ..auth.principal import Actor
from ..dbtypes import isoformat, utcnow
from ..errors import not_found
from ..extensions import db
from ..paging import Page, paginate
from ..places.models import FarmPark, Parcel, Region
from ..places.services import parcel_scope
from .evaluation import NOT_ASSESSED, explain_inputs
from .inputs import CHUNK
from .models import Grade, RollupMember, RollupSum
from .pack_admin import pack_ref
from .rollup import ASSESSED, HOLDING_BACK_CAP, AreaGrade, ParcelOutcome, RollupSums, clear_of_thresholds, rollup
from .rules import DEFAULT_PACK, RulePack, to_decimal
from .sums import _sums_from_row, area_dict

# Rows written before the verdict was renamed said ``not_graded``; readers accept both, and the next
# run over such a parcel supersedes its row with a ``not_assessed`` one (the old version kept).
LEGACY_NOT_ASSESSED = (NOT_ASSESSED, "not_graded")
URL_TYPES = {"parcel": "parcel", "village": "village", "farm-park": "farm_park", "county": "county"}


@dataclass(frozen=True)
class Subject:
    type: str
    code: str
    county: str
    info: dict[str, Any]


def get_subject(subject_type: str, code: str, actor: Actor | None = None) -> Subject:
    """The subject of a grade; 404 when unknown, outside the actor's county or a device's assignment."""
    if subject_type == "parcel":
        stmt = select(Parcel).where(Parcel.code == code)
        if actor is not None:
            stmt = stmt.where(*parcel_scope(actor))
        parcel = db.session.scalar(stmt)
        if parcel is None:
            raise not_found("parcel", code)
        return Subject("parcel", code, parcel.county_code, {
            "village": parcel.village_code, "farm_park": parcel.farm_park_code, "county": parcel.county_code,
            "land_use": parcel.land_use, "crop": parcel.crop, "area_m2": parcel.area_m2,
            "deleted": parcel.deleted_at is not None})
    if subject_type in ("village", "county"):
        region = db.session.scalar(select(Region).where(Region.code == code, Region.level == subject_type))
        if region is None or (actor is not None
                              and not access.may_see_area(actor, subject_type, code, region.county_code)):
            raise not_found(subject_type, code)
        return Subject(subject_type, code, region.county_code, {"name": region.name, "name_en": region.name_en,
                                                                "county": region.county_code})
    if subject_type == "farm_park":
        park = db.session.scalar(select(FarmPark).where(FarmPark.code == code))
        if park is None or (actor is not None and not access.may_see_area(actor, subject_type, code, park.county_code)):
            raise not_found("farm_park", code)
        return Subject("farm_park", code, park.county_code, {"name": park.name, "name_en": park.name_en,
                                                             "county": park.county_code, "area_m2": park.area_m2})
    raise not_found("subject type", subject_type)


def current_grade(subject_type: str, code: str, pack_code: str) -> Grade | None:
    return db.session.scalar(select(Grade).where(
        Grade.subject_type == subject_type, Grade.subject_code == code, Grade.rule_pack == pack_code,
        Grade.superseded_by.is_(None)).order_by(Grade.id.desc()).limit(1))


def _area_column(kind: str) -> Any:
    return {"village": Parcel.village_code, "farm_park": Parcel.farm_park_code, "county": Parcel.county_code}[kind]


def live_area_grade(kind: str, code: str, pack: RulePack) -> AreaGrade:
    """The full recompute: the area's live parcels and their current grades, rolled up from scratch."""
    grades = {g.subject_code: g for g in db.session.execute(
        select(Grade.subject_code, Grade.verdict, Grade.strict_control)
        .join(Parcel, Parcel.code == Grade.subject_code)
        .where(_area_column(kind) == code, Grade.subject_type == "parcel", Grade.rule_pack == pack.code,
               Grade.superseded_by.is_(None)))}
    outcomes = []
    for parcel_code, area in db.session.execute(select(Parcel.code, Parcel.area_m2).where(
            _area_column(kind) == code, Parcel.deleted_at.is_(None))):
        g = grades.get(parcel_code)
        verdict = g.verdict if g is not None and g.verdict not in LEGACY_NOT_ASSESSED else None
        outcomes.append(ParcelOutcome(parcel_code, area, verdict, bool(g.strict_control) if g else False))
    return rollup(outcomes, pack)


def maintained_sums(kind: str, code: str, pack_code: str) -> RollupSums | None:
    row = db.session.scalar(select(RollupSum).where(RollupSum.subject_type == kind, RollupSum.subject_code == code,
                                                    RollupSum.rule_pack == pack_code))
    return None if row is None else _sums_from_row(row)


def _holding_back(kind: str, code: str, pack_code: str) -> tuple[tuple[str, ...], int]:
    column = {"village": RollupMember.village_code, "farm_park": RollupMember.farm_park_code,
              "county": RollupMember.county_code}[kind]
    where = (RollupMember.rule_pack == pack_code, column == code, RollupMember.qualified.is_(False),
             RollupMember.verdict.in_(ASSESSED))  # unassessed parcels hold nothing back
    codes = tuple(db.session.scalars(select(RollupMember.parcel_code).where(*where)
                                     .order_by(RollupMember.area_m2.desc(), RollupMember.parcel_code)
                                     .limit(HOLDING_BACK_CAP)))
    return codes, len(codes)


def area_grade(kind: str, code: str, pack: RulePack) -> tuple[AreaGrade, Grade | None]:
    """From maintained sums when the county has state, otherwise computed live."""
    sums = maintained_sums(kind, code, pack.code)
    if sums is None:
        return live_area_grade(kind, code, pack), None
    holding, _ = _holding_back(kind, code, pack.code)
    ag = AreaGrade.from_sums(sums, pack, holding)
    return ag, current_grade(kind, code, pack.code)


Memo = Callable[[Hashable, Callable[[], Any]], Any]  # (key, compute) → compute() or what it gave before


def area_grades(kind: str, codes: Sequence[str], pack: RulePack,
                memo: Memo | None = None) -> dict[str, tuple[AreaGrade, Grade | None]]:
    """``area_grade`` for many villages or farm parks at once (the console's overview and certificate
    candidates list every area of a county): a handful of grouped queries, whatever their number.

    Areas with maintained sums read them (one query) and their current grade rows (one query). The
    others are rolled up live like ``live_area_grade``, grouped: the parcel count and area of each
    (one grouped query on the parcels' index), and the current grades of their parcels (one query);
    an area where some parcel is assessed sums its parcels' areas exactly, as ``live_area_grade``
    does (its grade rests on the total); an area with nothing assessed is ``not_assessed`` whatever
    its total, which is then the database's sum (shown, never compared; a strict-control parcel
    also takes the exact path). ``holding_back`` is left
    empty here (a list shows grades, counts and coverage; a subject's own page reads it).
    ``memo``: the caller's cache for the live roll-ups (the console keeps them while the county's
    data stands: ``console.county_memo``); the maintained sums are always read.
    """
    out: dict[str, tuple[AreaGrade, Grade | None]] = {}
    wanted = list(dict.fromkeys(codes))
    rows: dict[str, RollupSum] = {}
    current: dict[str, Grade] = {}
    for start in range(0, len(wanted), CHUNK):
        part = wanted[start:start + CHUNK]
        rows.update({r.subject_code: r for r in db.session.scalars(select(RollupSum).where(
            RollupSum.subject_type == kind, RollupSum.rule_pack == pack.code, RollupSum.subject_code.in_(part)))})
        for g in db.session.scalars(select(Grade).where(
                Grade.subject_type == kind, Grade.rule_pack == pack.code, Grade.superseded_by.is_(None),
                Grade.subject_code.in_(part)).order_by(Grade.id)):
            current[g.subject_code] = g  # the newest wins, as current_grade's ORDER BY id DESC
    for code, row in rows.items():
        out[code] = (AreaGrade.from_sums(_sums_from_row(row), pack), current.get(code))
    live = [c for c in wanted if c not in rows]
    if live:
        tallies = live_tallies(kind, live, pack, memo)
        out.update({c: (_live_area_grade(kind, c, tallies[c].sums, pack), None) for c in live})
    return out


@dataclass(frozen=True)
class LiveTally:
    """One area's live parcels and their current grades as the grouped roll-up counts them."""

    sums: RollupSums  # areas are the database's float sums (``_live_area_grade``)
    verdicts: int = 0  # parcels whose current grade has a verdict (not ``not_assessed``): coverage's "graded"
    estimated: int = 0  # of those, valued from neighbouring samples


def live_tallies(kind: str, codes: Sequence[str], pack: RulePack, memo: Memo | None = None) -> dict[str, LiveTally]:
    """Every area's ``LiveTally`` in one grouped query per chunk of areas (an area with no parcel: empty).

    ``memo``: the caller's cache (``area_grades``'); the console's county coverage asks it again with the
    same key and reads the overview's tallies instead of joining the county's grades a second time."""
    codes = list(codes)
    if memo is not None:
        return memo(("live_tallies", kind, tuple(codes), pack.code), lambda: live_tallies(kind, codes, pack))
    area = _area_column(kind)
    by_area: dict[str, tuple] = {}
    for start in range(0, len(codes), CHUNK):
        by_area.update({row[0]: row[1:] for row in db.session.execute(
            _grouped_sums(area, codes[start:start + CHUNK], pack.code))})
    return {code: _tally(by_area.get(code)) for code in codes}


def _live_area_grade(kind: str, code: str, sums: RollupSums, pack: RulePack) -> AreaGrade:
    """An area's grade from its float sums, or rolled up exactly where they cannot decide it.

    The database sums the parcels' float areas (all, assessed, qualified); a float sum of n
    non-negative terms is within about 2·n·2⁻⁵³ of the exact Decimal sum ``live_area_grade`` makes,
    so wherever the grade's comparisons (coverage, the A and B shares) clear their thresholds by
    more than ``_TOLERANCE`` of the area the float sums decide the grade exactly as the Decimals
    would. An area on such a knife edge takes the exact path, alone.
    """
    if clear_of_thresholds(sums, pack, _TOLERANCE):
        return AreaGrade.from_sums(sums, pack)
    return live_area_grade(kind, code, pack)


_TOLERANCE = 1e-6  # relative to the area's total; float sums of up to 10⁷ parcels are within ~2e-9


# the type as SQL text, not a bound value, so that a planner may match ``ix_grades_current_parcel``'s
# partial condition (as the tiles' grade join does; a bound value never matches it)
PARCEL_SQL = literal_column("'parcel'")


def _grouped_sums(area: Any, codes: list[str], pack_code: str) -> Any:
    """Per area: parcels, area, the count and area of assessed, qualified and strict-control parcels, and
    the count of parcels with a verdict and of those estimated (``LiveTally``)."""
    graded = Grade.verdict.in_(ASSESSED)
    qualified = Grade.verdict == "qualified"
    judged = Grade.verdict.not_in(LEGACY_NOT_ASSESSED)  # (no grade: NULL, not counted)

    def total(cond: Any, value: Any = 1) -> Any:
        return func.coalesce(func.sum(case((cond, value), else_=0)), 0)

    return (select(area, func.count(), func.coalesce(func.sum(Parcel.area_m2), 0),
                   total(graded), total(graded, Parcel.area_m2), total(qualified), total(qualified, Parcel.area_m2),
                   total(Grade.strict_control.is_(True)), total(judged),
                   total(and_(judged, Grade.basis == "estimated")))
            .select_from(Parcel)
            .outerjoin(Grade, and_(Grade.subject_code == Parcel.code, Grade.subject_type == PARCEL_SQL,
                                   Grade.rule_pack == pack_code, Grade.superseded_by.is_(None)))
            .where(area.in_(codes), Parcel.deleted_at.is_(None)).group_by(area))


def _tally(row: tuple | None) -> LiveTally:
    if row is None:
        return LiveTally(RollupSums())
    n, total, graded_n, graded, qualified_n, qualified, strict, verdicts, estimated = row
    return LiveTally(RollupSums(total_area=to_decimal(float(total)), graded_area=to_decimal(float(graded)),
                                qualified_area=to_decimal(float(qualified)), parcel_count=int(n),
                                graded_count=int(graded_n), qualified_count=int(qualified_n),
                                strict_count=int(strict)), int(verdicts), int(estimated))


def grade_dict(subject: Subject, pack: RulePack) -> dict[str, Any]:
    """The body of ``GET /api/v1/grades/<type>/<code>``."""
    subject_body = {"type": subject.type, "code": subject.code, **subject.info}
    if subject.type == "parcel":
        g = current_grade("parcel", subject.code, pack.code)
        if g is None:
            return {"subject": subject_body, "rule_pack": pack_ref(pack.code, pack.version), "grade": None,
                    "qualified": False, "verdict": NOT_ASSESSED, "limiting": [],
                    "explanation": {"reason": "no_approved_results"}, "computed_at": None,
                    "inputs": {"samples": [], "results": []}, "id": None, "fingerprint": None, "tested_on": None,
                    "strict_control": False, "basis": "not_assessed"}
        return parcel_grade_dict(g, subject_body)
    ag, g = area_grade(subject.type, subject.code, pack)
    explanation = area_dict(ag)
    return {"subject": subject_body,
            "rule_pack": pack_ref(pack.code, g.rule_pack_version if g else pack.version),
            "grade": ag.grade, "qualified": ag.qualified, "verdict": ag.verdict,
            "limiting": list(ag.holding_back), "explanation": explanation,
            "computed_at": isoformat(g.computed_at) if g else isoformat(utcnow()),
            "inputs": {"parcel_count": ag.parcel_count, "graded_count": ag.graded_count,
                       "maintained": g is not None},
            "id": str(g.id) if g else None, "fingerprint": g.fingerprint if g else None,
            "strict_control": ag.strict_control_count > 0}


def parcel_grade_dict(g: Grade, subject_body: dict[str, Any] | None = None) -> dict[str, Any]:
    explanation, inputs = explain_inputs(g)
    body = {"subject": subject_body or {"type": g.subject_type, "code": g.subject_code},
            "rule_pack": pack_ref(g.rule_pack, g.rule_pack_version), "grade": g.grade, "qualified": g.qualified,
            "verdict": g.verdict, "limiting": g.limiting, "explanation": explanation,
            "computed_at": isoformat(g.computed_at), "inputs": inputs, "id": str(g.id),
            "fingerprint": g.fingerprint, "tested_on": g.tested_on.isoformat() if g.tested_on else None,
            "strict_control": g.strict_control, "basis": grade_basis(g)}
    return body


def grade_history(kind: str, code: str, pack: RulePack, actor: Actor, limit: int, cursor: str | None,
                  verifications: Mapping) -> Page:
    """Every grade a subject the caller may see has had under a pack, oldest first, one page."""
    get_subject(kind, code, actor)
    stmt = select(Grade).where(Grade.subject_type == kind, Grade.subject_code == code, Grade.rule_pack == pack.code)
    rows, after = paginate(stmt, Grade.id, limit, cursor)
    return Page([history_item(g, verifications) for g in rows], after)


def grade_basis(g: Grade | None) -> str:
    """``measured`` (samples on the parcel), ``estimated`` (from neighbours) or ``not_assessed``."""
    if g is None or g.verdict in LEGACY_NOT_ASSESSED:
        return "not_assessed"
    return (g.explanation or {}).get("basis", "measured")


def history_item(g: Grade, verifications: Mapping) -> dict[str, Any]:
    return {"id": str(g.id), "rule_pack": pack_ref(g.rule_pack, g.rule_pack_version, verifications),
            "grade": g.grade, "verdict": g.verdict, "qualified": g.qualified, "limiting": g.limiting,
            "fingerprint": g.fingerprint, "computed_at": isoformat(g.computed_at), "computed_by": g.computed_by,
            "run_id": str(g.run_id) if g.run_id else None, "current": g.superseded_by is None,
            "superseded_by": str(g.superseded_by) if g.superseded_by else None,
            **dict(zip(("explanation", "inputs"), explain_inputs(g), strict=True))}


def grade_summaries(parcel_codes: Sequence[str], pack_code: str = DEFAULT_PACK) -> dict[str, dict[str, Any]]:
    """The small ``grade`` property of parcels in GET /parcels (one query for a page)."""
    out: dict[str, dict[str, Any]] = {}
    codes = list(parcel_codes)
    for start in range(0, len(codes), CHUNK):
        for g in db.session.execute(select(Grade.id, Grade.subject_code, Grade.rule_pack, Grade.rule_pack_version,
                                           Grade.grade, Grade.verdict, Grade.qualified, Grade.computed_at)
                                    .where(Grade.subject_type == "parcel", Grade.rule_pack == pack_code,
                                           Grade.superseded_by.is_(None),
                                           Grade.subject_code.in_(codes[start:start + CHUNK]))):
            out[g.subject_code] = {"id": str(g.id), "rule_pack": g.rule_pack, "rule_pack_version": g.rule_pack_version,
                                   "grade": g.grade, "verdict": g.verdict, "qualified": g.qualified,
                                   "computed_at": isoformat(g.computed_at)}
    return out
