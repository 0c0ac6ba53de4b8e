"""The contract for certificates: may a parcel, village or farm park be certified now, and why not.

Certificates call ``qualification``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select

from ..errors import validation_failed
from ..extensions import db
from ..places.models import Parcel
from ..samples.models import Sample, SyncConflict
from .basis import NOT_ASSESSED, Basis, basis_of, sigma_text
from .evaluation import explain
from .inputs import BLOCKING_CONFLICTS, CHUNK
from .models import Grade
from .pack_admin import _verifications, pack_ref, resolve_pack
from .queries import Memo, _area_column, area_grade, area_grades, current_grade, get_subject
from .rollup import AreaGrade
from .rules import RulePack
from .sums import area_dict


@dataclass(frozen=True)
class Qualification:
    """Whether a subject may be certified now, and why not.

    ``reasons`` are strings whose part before any ``:`` is a stable code: ``basis_not_assessed``
    (no usable measured or estimated value), ``basis_estimated`` (``basis_estimated: qualified;
    Cd ± 0.031 mg/kg; 12 samples``: a parcel is certified on measured values only),
    ``not_qualified`` (``not_qualified: Cd exceeds``), ``indeterminate`` (``indeterminate: Hg
    no_ph``), ``unresolved_conflicts``, ``incomplete_samples``, ``grade_below_A`` (``grade_below_A: B``),
    ``parcel_deleted``.
    """

    qualified: bool
    reasons: list[str]
    grade: str | None
    verdict: str
    rule_pack: dict[str, Any]
    tested_on: date | None
    grade_id: int | None
    explanation: dict[str, Any]


@dataclass(frozen=True)
class AreaFacts:
    """What ``qualification`` reads about one village's or farm park's samples and grades, read for
    many areas at once by ``area_facts`` (a page listing every village asked each of these per village)."""

    parcels: int = 0
    complete_samples: int = 0
    incomplete_samples: bool = False
    blocking_conflicts: bool = False
    tested_on: date | None = None


def area_facts(kind: str, codes: Sequence[str], rule_pack: str | None = None,
               county: str | None = None, count_parcels: bool = True, dated: bool = True) -> dict[str, AreaFacts]:
    """``AreaFacts`` for many villages or farm parks: five grouped queries, whatever their number.

    The same filters as the one-area queries below (live parcels, live samples, open blocking
    conflicts, current parcel grades of the pack); an area with nothing has ``AreaFacts()``.
    ``county``: the areas' county, when the caller knows it: the sample queries then start from the
    county's samples (a sample's county is its parcel's) rather than from every parcel of the areas,
    which at 100,000 parcels and a few thousand samples is most of the page's time. ``count_parcels``
    False leaves ``parcels`` 0 (a caller that counted them already: ``area_qualifications``). ``dated``
    False leaves ``tested_on`` None: finding it joins every parcel's grade, the slowest of these reads
    at county scale, and a list that shows no dates need not pay for it.
    """
    pack = resolve_pack(rule_pack)
    area = _area_column(kind)
    found: dict[str, dict[str, Any]] = {c: {} for c in codes}
    live = Parcel.deleted_at.is_(None)
    for start in range(0, len(codes), 500):
        part = list(codes[start:start + 500])
        if count_parcels:
            for code, n in db.session.execute(select(area, func.count()).where(area.in_(part), live)
                                              .group_by(area)):
                found[code]["parcels"] = int(n)
        in_county = (Sample.county_code == county,) if county is not None else ()
        sampled = select(area, func.count()).select_from(Sample).join(Parcel, Parcel.code == Sample.parcel_code) \
            .where(area.in_(part), live, Sample.deleted_at.is_(None), *in_county)
        for code, n in db.session.execute(sampled.where(Sample.state == "complete").group_by(area)):
            found[code]["complete_samples"] = int(n)
        for code, _ in db.session.execute(sampled.where(Sample.state != "complete").group_by(area)):
            found[code]["incomplete_samples"] = True
        conflicts = (select(area).select_from(SyncConflict).join(Sample, Sample.id == SyncConflict.record_id)
                     .join(Parcel, Parcel.code == Sample.parcel_code)
                     .where(area.in_(part), live, Sample.deleted_at.is_(None), *in_county,
                            SyncConflict.status == "open", SyncConflict.kind.in_(BLOCKING_CONFLICTS)).group_by(area))
        for (code,) in db.session.execute(conflicts):
            found[code]["blocking_conflicts"] = True
        if dated:
            for code, day in db.session.execute(
                    select(area, func.max(Grade.tested_on)).join(Parcel, Parcel.code == Grade.subject_code)
                    .where(area.in_(part), live, Grade.subject_type == "parcel", Grade.rule_pack == pack.code,
                           Grade.superseded_by.is_(None)).group_by(area)):
                found[code]["tested_on"] = _day(day)
    return {code: AreaFacts(**values) for code, values in found.items()}


def _day(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])  # SQLite hands max() of a date column back as text


def _blocking_reasons(conflicts: bool, incomplete: bool) -> list[str]:
    return (["unresolved_conflicts"] if conflicts else []) + (["incomplete_samples"] if incomplete else [])


def estimate_detail(verdict: str, b: Basis) -> str:
    """``qualified; Cd ± 0.031 mg/kg; 12 samples``: the reason's detail, parsed back into words by
    the console (``console.i18n.reason_text``)."""
    if b.analyte is None or b.sigma is None:
        return f"{verdict}; {b.samples} samples"
    return f"{verdict}; {b.analyte} ± {sigma_text(b.sigma)} {'' if b.analyte == 'pH' else b.unit}".rstrip() \
        + f"; {b.samples} samples"


def _blocking_samples(kind: str, code: str) -> list[str]:
    """``unresolved_conflicts`` / ``incomplete_samples`` reasons for the samples of a subject's parcels."""
    parcels = select(Parcel.code).where(_area_column(kind) == code, Parcel.deleted_at.is_(None)) \
        if kind != "parcel" else select(Parcel.code).where(Parcel.code == code)
    live = (Sample.parcel_code.in_(parcels), Sample.deleted_at.is_(None))
    reasons = []
    conflicts = db.session.scalar(select(SyncConflict.id).join(Sample, Sample.id == SyncConflict.record_id).where(
        *live, SyncConflict.status == "open", SyncConflict.kind.in_(BLOCKING_CONFLICTS)).limit(1))
    if conflicts is not None:
        reasons.append("unresolved_conflicts")
    incomplete = db.session.scalar(select(Sample.id).where(*live, Sample.state != "complete").limit(1))
    if incomplete is not None:
        reasons.append("incomplete_samples")
    return reasons


def _density_reason(kind: str, code: str, pack: RulePack, total_area_m2: Any,
                    complete_samples: int | None = None) -> str | None:
    """A village or farm park needs the pack's sample density (NY/T 1054 style; said when unverified)."""
    params = pack.estimation if pack.kind == "green_food_soil" else None
    if params is None or params.samples_per_ha is None or kind == "parcel":
        return None

    n = complete_samples if complete_samples is not None else db.session.scalar(
        select(func.count()).select_from(Sample).join(Parcel, Parcel.code == Sample.parcel_code)
        .where(_area_column(kind) == code, Parcel.deleted_at.is_(None),
               Sample.deleted_at.is_(None), Sample.state == "complete")) or 0
    ha = float(total_area_m2) / 10_000
    if ha <= 0 or n >= params.samples_per_ha * ha:
        return None
    code = "sample_density_below" if params.density_verified else "sample_density_below_unverified"
    return f"{code}: {n} / {ha:.1f} ha < {params.samples_per_ha:g}/ha"


def qualification(subject_type: str, code: str, rule_pack: str | None = None,
                  facts: AreaFacts | None = None) -> Qualification:
    """May this parcel, village or farm park be certified now? (Certificates call this.)

    ``facts``: a village's or farm park's samples and grades as ``area_facts`` read them for many
    areas at once (a listing); without, they are read here for this one.

    :raise Problem: 404 for an unknown subject, 422 for an unknown rule pack.
    """
    pack = resolve_pack(rule_pack)
    if subject_type not in ("parcel", "village", "farm_park", "county"):
        raise validation_failed({"subject_type": ["one of parcel, village, farm_park"]})
    subject = get_subject(subject_type, code)
    if subject_type == "parcel":
        g = current_grade("parcel", code, pack.code)
        return _parcel_qualification(g, subject.info["deleted"], pack, _blocking_samples("parcel", code))
    ag, g = area_grade(subject_type, code, pack)
    return _area_qualification(subject_type, code, pack, ag, g, facts)


def _parcel_qualification(g: Grade | None, deleted: bool, pack: RulePack, blocking: list[str],
                          verifications: Mapping | None = None, rebuild: bool = True) -> Qualification:
    """A parcel's qualification from its current grade; ``rebuild`` False keeps the stored explanation
    unless the reasons need the rebuilt one (a measured grade that does not qualify)."""
    reasons: list[str] = ["parcel_deleted"] if deleted else []
    b = basis_of(g.verdict if g is not None else None, g.explanation if g is not None else None,
                 g.inputs if g is not None else None, pack.data.get("unit", "mg/kg"))
    basis = b.basis
    needs_rows = g is not None and basis == "measured" and g.verdict != "qualified"
    if g is None:
        explanation: dict[str, Any] = {"reason": "no_approved_results"}
    else:
        explanation = explain(g) if rebuild or needs_rows else dict(g.explanation or {})
    if g is None or basis == NOT_ASSESSED:
        reasons.append("basis_not_assessed")
    elif basis != "measured":  # a parcel is certified on measured values only
        reasons.append(f"basis_{basis}: {estimate_detail(g.verdict, b)}")
    elif needs_rows:
        rows = explanation.get("analytes", [])
        if g.verdict == "not_qualified":
            bad = [r["analyte"] for r in rows if r.get("verdict") == "exceeds"] or list(g.limiting)
            reasons.extend(f"not_qualified: {a} exceeds" for a in bad)
        else:
            reasons.append("indeterminate")
            reasons.extend(f"indeterminate: {r['analyte']} {r.get('reason')}" for r in rows
                           if r.get("verdict") == "indeterminate")
    reasons.extend(blocking)
    ref = pack_ref(pack.code, g.rule_pack_version if g else pack.version, verifications)
    return Qualification(not reasons, reasons, g.grade if g else None, g.verdict if g else NOT_ASSESSED, ref,
                         g.tested_on if g else None, g.id if g else None, explanation)


def parcel_qualifications(codes: Sequence[str], rule_pack: str | None = None) -> dict[str, Qualification]:
    """``qualification`` of many parcels (the console's candidates list up to 130): their rows, current
    grades and blocking samples read grouped. The same reasons; a parcel's explanation is rebuilt only
    where its reasons need it (a measured grade that does not qualify), else it is the stored one. An
    unknown parcel is left out (``qualification`` answers 404 for it)."""
    pack = resolve_pack(rule_pack)
    wanted = list(dict.fromkeys(codes))
    deleted: dict[str, bool] = {}
    grades: dict[str, Grade] = {}
    conflicted: set[str] = set()
    incomplete: set[str] = set()
    for start in range(0, len(wanted), CHUNK):
        part = wanted[start:start + CHUNK]
        deleted.update({c: bool(d) for c, d in db.session.execute(
            select(Parcel.code, Parcel.deleted_at.is_not(None)).where(Parcel.code.in_(part)))})
        for g in db.session.scalars(select(Grade).where(
                Grade.subject_type == "parcel", Grade.subject_code.in_(part), Grade.rule_pack == pack.code,
                Grade.superseded_by.is_(None)).order_by(Grade.id)):
            grades[g.subject_code] = g  # the newest wins, as current_grade's ORDER BY id DESC
        live = (Sample.parcel_code.in_(part), Sample.deleted_at.is_(None))
        conflicted.update(db.session.scalars(select(Sample.parcel_code).join(
            SyncConflict, SyncConflict.record_id == Sample.id).where(
            *live, SyncConflict.status == "open", SyncConflict.kind.in_(BLOCKING_CONFLICTS)).distinct()))
        incomplete.update(db.session.scalars(select(Sample.parcel_code).where(
            *live, Sample.state != "complete").distinct()))
    verifications = _verifications()
    return {code: _parcel_qualification(grades.get(code), deleted[code], pack,
                                        _blocking_reasons(code in conflicted, code in incomplete),
                                        verifications, rebuild=False)
            for code in wanted if code in deleted}


def area_qualifications(kind: str, codes: Sequence[str], rule_pack: str | None = None,
                        county: str | None = None, dated: bool = True,
                        memo: Memo | None = None) -> dict[str, Qualification]:
    """``qualification`` of many villages or farm parks (the console's candidates list every area of a
    county): their facts and grades read grouped (``area_facts``, ``area_grades``), not per area.
    The same reasons as one area's; ``explanation`` lists no holding-back parcels (a list shows none).
    ``dated`` False: ``tested_on`` is None, not read (``area_facts``); ``memo`` as ``area_grades``'."""
    pack = resolve_pack(rule_pack)
    if kind not in ("village", "farm_park"):
        raise validation_failed({"subject_type": ["one of village, farm_park"]})
    facts = area_facts(kind, codes, pack.code, county, count_parcels=False, dated=dated)  # area_grades counts
    grades = area_grades(kind, codes, pack, memo)
    verifications = _verifications()  # read once, not once per area
    return {code: _area_qualification(kind, code, pack, *grades[code], facts[code], verifications) for code in codes}


def _area_qualification(subject_type: str, code: str, pack: RulePack, ag: AreaGrade, g: Grade | None,
                        facts: AreaFacts | None, verifications: Mapping | None = None) -> Qualification:
    reasons: list[str] = []
    if ag.grade == "not_assessed":
        reasons.append(f"not_assessed: {float(ag.coverage):.1%} < {float(ag.min_coverage):.0%}")
    elif ag.grade != "A":
        reasons.append(f"grade_below_A: {ag.grade}")
    density = _density_reason(subject_type, code, pack, ag.total_area_m2,
                              facts.complete_samples if facts is not None else None)
    if density:
        reasons.append(density)
    if facts is not None:
        reasons.extend(_blocking_reasons(facts.blocking_conflicts, facts.incomplete_samples))
        tested_on = facts.tested_on
    else:
        reasons.extend(_blocking_samples(subject_type, code))
        # max(), not ORDER BY ... DESC LIMIT 1: PostgreSQL sorts NULLs first there (an ungraded parcel's
        # grade has none), so that read no test date for most villages on PostgreSQL and the latest on SQLite
        tested_on = _day(db.session.scalar(select(func.max(Grade.tested_on)).join(
            Parcel, Parcel.code == Grade.subject_code).where(
            _area_column(subject_type) == code, Parcel.deleted_at.is_(None), Grade.subject_type == "parcel",
            Grade.rule_pack == pack.code, Grade.superseded_by.is_(None))))
    return Qualification(not reasons, reasons, ag.grade, ag.verdict,
                         pack_ref(pack.code, g.rule_pack_version if g else pack.version, verifications), tested_on,
                         g.id if g else None, area_dict(ag))
