"""Read-only queries the console needs and the domain services do not offer (counts, queues, lists).

Every query here is scoped through ``fieldsvc.access`` (directly, or through the services' own
``sample_scope``, ``result_scope``, ``conflict_filter``), so the console never sees more than the
API would show the same account. Nothing here writes.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, String, and_, case, cast, func, or_, select

from .. import access
from ..auth.principal import Actor
from ..certificates.models import Certificate
from ..devices.models import Device
from ..extensions import db
from ..grading.basis import Basis, basis_of
from ..grading.models import Grade, GradingRun
from ..grading.queries import LEGACY_NOT_ASSESSED, PARCEL_SQL, Memo, live_tallies
from ..grading.rules import DEFAULT_PACK, RulePack
from ..grading.sums import county_has_state
from ..lab.models import LabResult
from ..lab.services import result_scope
from ..places.models import FarmPark, Parcel, Region
from ..samples.conflicts import conflict_filter
from ..samples.models import Sample, SyncConflict
from ..samples.services import sample_scope

QUEUE_ROWS = 100  # rows listed per queue (the count shows the total)
FLAGS = ("location_mismatch", "clock_skew", "low_accuracy", "mock_location", "null_island")
REVIEW_FLAGS = ("accepted", "sent_back")  # an official's review of them (samples/review.py)


def counties(actor: Actor) -> list[Region]:
    return list(db.session.scalars(select(Region).where(Region.level == "county",
                                                        access.county_filter(actor, Region.county_code))
                                   .order_by(Region.code)))


def villages(county: str) -> list[Region]:
    return list(db.session.scalars(select(Region).where(Region.level == "village", Region.county_code == county)
                                   .order_by(Region.code)))


def farm_parks(county: str) -> list[FarmPark]:
    return list(db.session.scalars(select(FarmPark).where(FarmPark.county_code == county).order_by(FarmPark.code)))


def _area_column(kind: str) -> Any:
    return {"county": Parcel.county_code, "village": Parcel.village_code, "farm_park": Parcel.farm_park_code}[kind]


def parcels_in(kind: str, code: str, limit: int | None = None) -> list[Any]:
    stmt = (select(Parcel.code, Parcel.village_code, Parcel.farm_park_code, Parcel.land_use, Parcel.crop,
                   Parcel.area_m2)
            .where(_area_column(kind) == code, Parcel.deleted_at.is_(None)).order_by(Parcel.code))
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(db.session.execute(stmt))


def _states(rows: Any) -> dict[str, str]:
    """(parcel, sample state) rows → parcel → ``complete`` (every live sample complete), ``held``,
    ``incomplete``; a parcel without samples is absent."""
    seen: dict[str, set[str]] = defaultdict(set)
    for parcel, state in rows:
        seen[parcel].add(state)
    out = {}
    for parcel, states in seen.items():
        if states == {"complete"}:
            out[parcel] = "complete"
        elif states & {"held", "needs_review"}:
            out[parcel] = "held"
        else:
            out[parcel] = "incomplete"
    return out


def sampling_states_of(parcel_codes: list[str]) -> dict[str, str]:
    """The sampling state of these parcels (a page's rows, never a whole area)."""
    if not parcel_codes:
        return {}
    return _states(db.session.execute(select(Sample.parcel_code, Sample.state).where(
        Sample.parcel_code.in_(parcel_codes), Sample.deleted_at.is_(None)).distinct()))


def _current_of(parcel_codes: list[str], pack: str, *columns: Any) -> Any:
    return db.session.execute(select(Grade.subject_code, *columns).where(
        Grade.subject_type == "parcel", Grade.subject_code.in_(parcel_codes), Grade.rule_pack == pack,
        Grade.superseded_by.is_(None)))


def verdicts_of(parcel_codes: list[str], pack: str = DEFAULT_PACK) -> dict[str, str]:
    """parcel → its current verdict under ``pack`` (absent: not graded), for a page's rows."""
    return dict(_current_of(parcel_codes, pack, Grade.verdict).all()) if parcel_codes else {}


def bases_of(parcel_codes: list[str], pack: str = DEFAULT_PACK) -> dict[str, Basis]:
    """parcel → what its current grade rests on (measured, estimated ± σ; absent: not assessed), for a
    page's rows."""
    if not parcel_codes:
        return {}
    return {r[0]: basis_of(r[1], r[2], r[3])
            for r in _current_of(parcel_codes, pack, Grade.verdict, Grade.explanation, Grade.inputs)}


@dataclass(frozen=True)
class Coverage:
    parcels: int
    sampled: int
    complete: int
    graded: int
    qualified: int
    estimated: int = 0  # of the graded: valued from neighbouring samples (basis estimated)


def geometry(text: str) -> dict[str, Any]:
    return json.loads(text)


# --- samples and results of a parcel ------------------------------------------------------------

def samples_of_parcel(parcel: str, actor: Actor) -> list[Sample]:
    return list(db.session.scalars(select(Sample).where(Sample.parcel_code == parcel, *sample_scope(actor))
                                   .order_by(Sample.received_at)))


def results_of_samples(sample_ids: list[str], actor: Actor) -> dict[str, list[LabResult]]:
    out: dict[str, list[LabResult]] = defaultdict(list)
    if not sample_ids:
        return out
    for r in db.session.scalars(select(LabResult).where(LabResult.sample_id.in_(sample_ids), *result_scope(actor))
                                .order_by(LabResult.analyte, LabResult.version)):
        out[r.sample_id].append(r)
    return out


def open_conflicts_for(record_ids: list[str], actor: Actor) -> list[SyncConflict]:
    if not record_ids:
        return []
    return list(db.session.scalars(select(SyncConflict).where(
        SyncConflict.record_id.in_(record_ids), *conflict_filter({"status": "open"}, actor))))


# --- queues -------------------------------------------------------------------------------------

def _pending_current() -> list[Any]:
    return [LabResult.status == "pending", LabResult.superseded_by.is_(None), LabResult.qc_type.is_(None)]


def _flag_filter() -> Any:
    """Samples with a flag an official has not accepted yet (sent back ones stay, marked, until the
    device pushes them again)."""
    text = cast(Sample.flags, String)
    return and_(or_(*(text.like(f'%"{flag}"%') for flag in FLAGS)), ~text.like('%"accepted"%'))


def queue_statements(actor: Actor) -> dict[str, Any]:
    """Each queue as a select of its rows (scoped), in the order an official works through them."""
    live = Sample.deleted_at.is_(None)
    return {
        "conflicts": select(SyncConflict).where(*conflict_filter({"status": "open"}, actor))
        .order_by(SyncConflict.id),
        "held_samples": select(Sample).where(*sample_scope(actor), live,
                                             Sample.state.in_(("held", "needs_review")))
        .order_by(Sample.received_at),
        "held_results": select(LabResult).where(*result_scope(actor), *_pending_current(),
                                                LabResult.sample_id.is_(None)).order_by(LabResult.id),
        "pending_results": select(LabResult).where(*result_scope(actor), *_pending_current(),
                                                   LabResult.sample_id.is_not(None), LabResult.qc_hold.is_(False))
        .order_by(LabResult.id),
        "qc_holds": select(LabResult).where(*result_scope(actor), *_pending_current(), LabResult.qc_hold.is_(True))
        .order_by(LabResult.id),
        "flagged_samples": select(Sample).where(*sample_scope(actor), live, _flag_filter())
        .order_by(Sample.received_at),
    }


def queue_counts(actor: Actor) -> dict[str, int]:
    return {name: db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
            for name, stmt in queue_statements(actor).items()}


def queue_rows(actor: Actor, name: str, limit: int = QUEUE_ROWS) -> list[Any]:
    return list(db.session.scalars(queue_statements(actor)[name].limit(limit)))


def samples_by_id(ids: list[str]) -> dict[str, Sample]:
    if not ids:
        return {}
    return {s.id: s for s in db.session.scalars(select(Sample).where(Sample.id.in_(ids)))}


# --- grading, certificates, devices -----------------------------------------------------------

def runs(actor: Actor, county: str, limit: int = 20) -> list[GradingRun]:
    if not access.may_see_record(actor, county):
        return []
    return list(db.session.scalars(select(GradingRun).where(GradingRun.county_code == county)
                                   .order_by(GradingRun.id.desc()).limit(limit)))


def previous_run(run: GradingRun) -> GradingRun | None:
    return db.session.scalar(select(GradingRun).where(
        GradingRun.scope_type == run.scope_type, GradingRun.scope_code == run.scope_code,
        GradingRun.rule_pack == run.rule_pack, GradingRun.id < run.id).order_by(GradingRun.id.desc()).limit(1))


def qualified_parcels(county: str, limit: int = 100, pack: str = DEFAULT_PACK) -> list[str]:
    """Parcels whose current grade qualifies and that hold no valid certificate yet (issue candidates)."""
    certified = select(Certificate.subject_code).where(Certificate.subject_type == "parcel",
                                                       Certificate.status == "valid")
    return list(db.session.scalars(
        select(Grade.subject_code).join(Parcel, Parcel.code == Grade.subject_code)
        .where(Parcel.county_code == county, Parcel.deleted_at.is_(None), Grade.subject_type == "parcel",
               Grade.rule_pack == pack, Grade.superseded_by.is_(None), Grade.verdict == "qualified",
               Grade.subject_code.not_in(certified))
        .order_by(Grade.subject_code).limit(limit)))


def not_qualified_parcels(county: str, limit: int = 30, pack: str = DEFAULT_PACK) -> list[str]:
    return list(db.session.scalars(
        select(Grade.subject_code).join(Parcel, Parcel.code == Grade.subject_code)
        .where(Parcel.county_code == county, Parcel.deleted_at.is_(None), Grade.subject_type == "parcel",
               Grade.rule_pack == pack, Grade.superseded_by.is_(None),
               Grade.verdict.in_(("not_qualified", "indeterminate")))
        .order_by(Grade.subject_code).limit(limit)))


def certificates(actor: Actor, county: str) -> Select:
    """The county's certificates (a statement: the page pages it, newest first)."""
    return select(Certificate).where(Certificate.county_code == county,
                                     access.record_filter(actor, Certificate.county_code))


def certificates_of(actor: Actor, subject_type: str, code: str) -> list[Certificate]:
    """Every certificate of one subject, newest first (however many the county has)."""
    return list(db.session.scalars(select(Certificate).where(
        Certificate.subject_type == subject_type, Certificate.subject_code == code,
        access.record_filter(actor, Certificate.county_code)).order_by(Certificate.id.desc())))


def devices(actor: Actor) -> Select:
    """The devices this account may see (a statement: the page pages it, newest first)."""
    return select(Device).where(*access.device_filter(actor, Device.county_code, Device.user_id, Device.id))


def samplers(actor: Actor) -> list[str]:
    from ..auth.models import User

    stmt = select(User.username).where(User.role == "sampler", User.disabled_at.is_(None),
                                       access.county_filter(actor, User.county_code))
    return list(db.session.scalars(stmt.order_by(User.username).limit(500)))


def coverage_counts(kind: str, code: str, pack: str = DEFAULT_PACK) -> Coverage:
    """``coverage`` counted in the database (the overview of a 1,000,000-parcel county reads no rows)."""
    area = _area_column(kind)
    live = (area == code, Parcel.deleted_at.is_(None))
    parcels = _live_parcels(kind, code)
    sampled, complete = _sampled(kind, code)
    estimated = case((Grade.basis == "estimated", 1), else_=0)  # the column, not the explanation's JSON
    graded, qualified, n_estimated = db.session.execute(
        select(func.count(), func.coalesce(func.sum(case((Grade.verdict == "qualified", 1), else_=0)), 0),
               func.coalesce(func.sum(estimated), 0))
        .select_from(Grade).join(Parcel, Parcel.code == Grade.subject_code)
        .where(*live, Grade.subject_type == PARCEL_SQL, Grade.rule_pack == pack, Grade.superseded_by.is_(None),
               Grade.verdict.not_in(LEGACY_NOT_ASSESSED))).one()  # the live tallies' "verdicts", one spelling
    return Coverage(parcels, sampled, complete, int(graded), int(qualified), int(n_estimated))


def _live_parcels(kind: str, code: str) -> int:
    return db.session.scalar(select(func.count()).select_from(Parcel).where(
        _area_column(kind) == code, Parcel.deleted_at.is_(None))) or 0


def _sampled(kind: str, code: str) -> tuple[int, int]:
    """Live parcels with a live sample, and those whose samples are all complete."""
    # a county's samples through their own county (a sample's is its parcel's): the plan starts from
    # the few samples, not from every parcel of the county
    in_county = (Sample.county_code == code,) if kind == "county" else ()
    per_parcel = (select(Sample.parcel_code,
                         func.min(case((Sample.state == "complete", 1), else_=0)).label("all_complete"))
                  .join(Parcel, Parcel.code == Sample.parcel_code)
                  .where(_area_column(kind) == code, Parcel.deleted_at.is_(None), Sample.deleted_at.is_(None),
                         *in_county).group_by(Sample.parcel_code).subquery())
    sampled, complete = db.session.execute(select(func.count(), func.coalesce(func.sum(per_parcel.c.all_complete), 0))
                                           .select_from(per_parcel)).one()
    return int(sampled), int(complete)


def county_coverage(code: str, village_codes: Sequence[str], pack: RulePack, memo: Memo) -> Coverage:
    """``coverage_counts`` of a county, from the villages' live tallies when the county has no maintained
    roll-up sums: the overview has just read them (``grading.queries.live_tallies``, same ``memo`` key),
    so the county's 100,000 current grades are not joined a second time. Only when the villages hold
    every live parcel of the county (each parcel has one village; checked by count), else counted anew."""
    if county_has_state(code, pack.code):
        return coverage_counts("county", code, pack.code)
    tallies = live_tallies("village", village_codes, pack, memo).values()
    parcels = _live_parcels("county", code)
    if sum(t.sums.parcel_count for t in tallies) != parcels:
        return coverage_counts("county", code, pack.code)
    sampled, complete = _sampled("county", code)
    return Coverage(parcels, sampled, complete, sum(t.verdicts for t in tallies),
                    sum(t.sums.qualified_count for t in tallies), sum(t.estimated for t in tallies))


def serial_count(certificate_id: int) -> int:
    """How many serial labels were printed for a certificate (a re-issue outdates them)."""
    from ..certificates.models import LabelSerial

    return int(db.session.scalar(select(func.count()).select_from(LabelSerial).where(
        LabelSerial.certificate_id == certificate_id)) or 0)


# --- field evidence of a parcel's samples ------------------------------------------------------------

def device_names(device_pks: list[int | None]) -> dict[int, tuple[str, str | None]]:
    """device pk → (its name, its sampler's username): officials see which phone and which person
    collected a sample (never a public page)."""
    from ..auth.models import User

    pks = sorted({pk for pk in device_pks if pk is not None})
    if not pks:
        return {}
    rows = db.session.execute(select(Device.id, Device.name, User.username)
                              .outerjoin(User, User.id == Device.user_id).where(Device.id.in_(pks)))
    return {pk: (name, username) for pk, name, username in rows}


def complete_blobs(shas: list[str]) -> set[str]:
    """The blobs among ``shas`` that fully arrived (only those have a photo to show)."""
    from ..media.models import MediaBlob

    if not shas:
        return set()
    return set(db.session.scalars(select(MediaBlob.sha256).where(MediaBlob.sha256.in_(shas),
                                                                  MediaBlob.complete.is_(True))))


def review_notes(sample_ids: list[str]) -> dict[str, dict[str, Any]]:
    """sample id → its latest flag review (accept / send back): who, when, the note (from the audit log)."""
    from ..audit.models import AuditEvent

    if not sample_ids:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for e in db.session.scalars(select(AuditEvent).where(
            AuditEvent.entity_type == "sample", AuditEvent.entity_key.in_(sample_ids),
            AuditEvent.action.in_(("accept_flags", "send_back"))).order_by(AuditEvent.id)):
        out[e.entity_key] = {"action": e.action, "actor": e.actor, "at": e.at, "note": (e.details or {}).get("note")}
    return out


def samples_naming(sha256: str, actor: Actor) -> list[Sample]:
    """The visible samples whose manifest names a blob (its MIME type comes from the manifest)."""
    from ..media.models import SampleMedia

    return list(db.session.scalars(select(Sample).join(SampleMedia, SampleMedia.sample_id == Sample.id)
                                   .where(SampleMedia.sha256 == sha256, *sample_scope(actor)).limit(5)))
