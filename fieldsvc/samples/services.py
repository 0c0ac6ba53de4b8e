"""Samples: build rows from validated data, edit and tombstone them, link held ones, read them.

Flush, never commit: the request (or the CLI) commits. Sync push (``fieldsvc.sync.push``)
decides *what* happens to each pushed record; this module knows what a sample row is.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any, Iterable, Mapping, NamedTuple

from sqlalchemy import ColumnElement, and_, bindparam, case, delete, insert, select, true

from .. import access
from ..audit import services as audit
from ..audit.models import EntityVersion
from ..audit.services import Change, canonical_json, insert_rows, record_many, versions_for
from ..auth.principal import SYSTEM, Actor
from ..dbtypes import isoformat, utcnow
from ..dbutil import core_execute, dialect_name
from ..errors import conflict, not_found, validation_failed
from ..events import ParcelsChanged, SamplesChanged, publish
from ..extensions import db
from ..media.models import MediaBlob, SampleMedia
from ..paging import Page, paginate
from ..places import geometry as geo
from ..places.models import Parcel
from ..places.services import parcel_scope
from ..sequence import allocate
from .content import content_hash
from .models import Sample, SampleClient
from .validation import SampleRules, location_flags, order_flags, time_flags

RULES = SampleRules()


# --- content <-> row ------------------------------------------------------------------------

def sample_data(sample: Any) -> dict[str, Any]:
    """The sample's content in the pushed ``data`` names (DESIGN §3), from a Sample or a row."""
    location = None
    if sample.lat is not None or sample.location_raw is not None:
        location = {"lat": sample.lat, "lon": sample.lon, "accuracy_m": sample.accuracy_m,
                    "mock": bool(sample.mock_location), "raw": sample.location_raw or {}}
    return {"code": sample.code, "parcel": sample.parcel_code, "collected_at": sample.collected_at_raw,
            "location": location, "depth_top_cm": sample.depth_top_cm, "depth_bottom_cm": sample.depth_bottom_cm,
            "sample_type": sample.sample_type, "land_use_observed": sample.land_use_observed,
            "note": sample.note, "media": list(sample.media or []),
            **_extra_data(getattr(sample, "extra", None), getattr(sample, "extension_version", None))}


def _extra_data(extra: Any, version: int | None) -> dict[str, Any]:
    """``extra`` and ``extension_version`` when the sample has answers; nothing otherwise, so a
    sample without answers keeps the content (and hash) it had before extensions existed."""
    return {"extra": dict(extra), "extension_version": version} if extra else {}


def row_data(row: Mapping[str, Any]) -> dict[str, Any]:
    """``sample_data`` of a ``new_row`` dict, without building a Sample."""
    location = None
    if row["lat"] is not None or row["location_raw"] is not None:
        location = {"lat": row["lat"], "lon": row["lon"], "accuracy_m": row["accuracy_m"],
                    "mock": bool(row["mock_location"]), "raw": row["location_raw"] or {}}
    return {"code": row["code"], "parcel": row["parcel_code"], "collected_at": row["collected_at_raw"],
            "location": location, "depth_top_cm": row["depth_top_cm"], "depth_bottom_cm": row["depth_bottom_cm"],
            "sample_type": row["sample_type"], "land_use_observed": row["land_use_observed"],
            "note": row["note"], "media": list(row["media"] or []),
            **_extra_data(row.get("extra"), row.get("extension_version"))}


def data_text(sample: Any) -> str:
    """The stored ``data_json`` of a sample: ``canonical_json(sample_data(sample))``.

    One serialisation per write serves three readers: the audit digest, the version row
    (``Change.after_json``) and pull, which splices it in unparsed. A row written without it
    (before the column existed, or by hand) gets it built here from its columns.
    """
    text = getattr(sample, "data_json", None)
    return text if text is not None else canonical_json(sample_data(sample))


def effective_state(sample: Sample, now: datetime | None = None) -> str:
    """A held sample past its TTL reads as ``needs_review`` even before housekeeping runs."""
    if sample.state == "held" and sample.held_until is not None and sample.held_until <= (now or utcnow()):
        return "needs_review"
    return sample.state


def sample_dict(sample: Sample, now: datetime | None = None) -> dict[str, Any]:
    """``GET /api/v1/samples/<id>``: the data names plus what the server made (``sample_text``, parsed)."""
    return json.loads(sample_json(sample, now))


def sample_json(sample: Sample, now: datetime | None = None) -> str:
    """``sample_text`` of a Sample."""
    return sample_text(
        sample.id, data_text(sample), sample.version, effective_state(sample, now),
        _dump(list(sample.flags or [])), sample.clock_skew_s, time_text(sample.received_at),
        time_text(sample.collected_at), time_text(sample.held_until), time_text(sample.updated_at),
        sample.deleted_at is not None)


def sample_text(sample_id: str, data: str, version: int, state: str, flags: str, clock_skew_s: float | None,
                received_at: str, collected_at_parsed: str, held_until: str, updated_at: str, deleted: bool) -> str:
    """A sample as JSON text: what the server made (flags and times as JSON text), then its stored
    data text (``data_text``) spliced in unparsed. The one writer of a sample's JSON form: reads parse
    it, and sync pull sends it as it is (a pull page is mostly samples, ``bench/sync.py``)."""
    server = (f'{{"clock_skew_s":{"null" if clock_skew_s is None else _dump(clock_skew_s)},'
              f'"collected_at_parsed":{collected_at_parsed},"deleted":{"true" if deleted else "false"},'
              f'"flags":{flags},"held_until":{held_until},"id":{_escape(sample_id)},"received_at":{received_at},'
              f'"state":{_escape(state)},"updated_at":{updated_at},"version":{int(version)}')
    return server + (f",{data[1:]}" if data != "{}" else "}")


def time_text(moment: datetime | None) -> str:
    """A server time as JSON text: ``null`` or its RFC 3339 string."""
    return "null" if moment is None else f'"{isoformat(moment)}"'


_dump = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode


class ParcelInfo(NamedTuple):
    """What judging a sample needs from its parcel (looked up once per batch; a tuple, as a
    batch makes hundreds and a frozen dataclass costs ~1.5 µs each to build)."""

    code: str
    county_code: str
    geometry: dict[str, Any] | None
    deleted: bool
    visible: bool


@dataclass
class Derivation:
    """The server-made columns for one validated sample."""

    flags: list[str]
    state: str
    county_code: str | None
    held_until: datetime | None
    extra: dict[str, Any] = field(default_factory=dict)


def derive(clean: Mapping[str, Any], collected_at_utc: datetime | None, record_flags: list[str],
           parcel: ParcelInfo | None, skew_s: float | None, now: datetime, hold_ttl_s: int,
           complete_media: set[str], fallback_county: str | None, rules: SampleRules = RULES,
           fix_flagged: bool = False) -> Derivation:
    """Flags (location vs parcel, clock) and the state: held, awaiting_media or complete."""
    flags = list(record_flags)
    loc = clean.get("location")
    if parcel is not None and parcel.geometry is not None and loc and loc.get("lat") is not None:
        distance = geo.distance_to_geometry_m(loc["lon"], loc["lat"], parcel.geometry)
        # A point inside its parcel is never a mismatch (accuracy >= 0 plus a buffer >= 0): when
        # record_flags hold this fix's own flags already (``fix_flagged``), only a point outside
        # needs the check.
        if not (distance == 0.0 and fix_flagged and rules.location_buffer_m >= 0):
            flags += location_flags(loc["lat"], loc["lon"], loc["accuracy_m"], distance, rules)
    flags += time_flags(collected_at_utc, skew_s, now, rules)
    if parcel is None:
        return Derivation(order_flags(flags), "held", fallback_county, now + timedelta(seconds=hold_ttl_s))
    missing = [m for m in clean.get("media") or [] if m["sha256"] not in complete_media]
    return Derivation(order_flags(flags), "awaiting_media" if missing else "complete", parcel.county_code, None)


def new_row(sample_id: str, clean: Mapping[str, Any], collected_at_utc: datetime | None, d: Derivation,
            seq: int, skew_s: float | None, now: datetime, actor: Actor, digest: str) -> dict[str, Any]:
    """The samples row for validated ``clean`` content, ``data_json`` included, and in
    ``location_raw_json`` the JSON text its ``location_raw`` is stored as (written once for both)."""
    loc = clean.get("location") or {}
    row = {
        "id": sample_id, "code": clean["code"], "parcel_code": clean["parcel"], "county_code": d.county_code,
        "state": d.state, "flags": d.flags, "collected_at_raw": clean["collected_at"],
        "collected_at": collected_at_utc, "received_at": now, "clock_skew_s": skew_s,
        "lat": loc.get("lat"), "lon": loc.get("lon"), "accuracy_m": loc.get("accuracy_m"),
        "mock_location": bool(loc.get("mock")), "location_raw": loc.get("raw") if loc else None,
        "depth_top_cm": clean["depth_top_cm"], "depth_bottom_cm": clean["depth_bottom_cm"],
        "sample_type": clean["sample_type"], "land_use_observed": clean["land_use_observed"],
        "note": clean["note"], "media": list(clean.get("media") or []), "extra": clean.get("extra") or None,
        "extension_version": clean.get("extension_version") if clean.get("extra") else None,
        "content_hash": digest, "version": 1,
        "seq": seq, "device_pk": actor.device_pk, "created_by": actor.label, "held_until": d.held_until,
        "created_at": now, "updated_at": now, "deleted_at": None,
    }
    row["data_json"] = canonical_json(row_data(row))
    raw = row["location_raw"]
    row["location_raw_json"] = "null" if raw is None else canonical_json(raw or {})  # (a JSON column: None is null)
    return row


_escape = json.encoder.encode_basestring  # what ``canonical_json`` writes strings with (non-ASCII as it is)


ROW_COLUMNS = ("id", "code", "parcel_code", "county_code", "state", "flags", "collected_at_raw", "collected_at",
               "received_at", "clock_skew_s", "lat", "lon", "accuracy_m", "mock_location", "location_raw",
               "depth_top_cm", "depth_bottom_cm", "sample_type", "land_use_observed", "note", "media",
               "extra", "extension_version", "content_hash", "version", "seq", "device_pk", "created_by",
               "held_until", "created_at", "updated_at", "deleted_at", "data_json")


def insert_sample(row: Mapping[str, Any]) -> None:
    """Insert one ``new_row`` dict (a taken id or bag code raises IntegrityError)."""
    db.session.execute(insert(Sample.__table__).values({name: row[name] for name in ROW_COLUMNS}))


def insert_new_samples(rows: list[dict[str, Any]]) -> set[str]:
    """Insert ``new_row`` dicts with one driver ``executemany``, leaving out any whose id or bag code
    is taken; returns the ids that went in.

    When the driver counts every row in, they all went in (a skipped row counts 0); otherwise they
    are read back by the rows' fresh change numbers (a range of the ``seq`` index). Either way a
    batch of new samples costs no lookup of each id and code first; the caller judges the rest alone.
    """
    if not rows:
        return set()
    # on SQLite location_raw goes in as the JSON text new_row wrote (json.dumps again: ~2.7 µs a row);
    # psycopg wants its own JSON wrapper, which the column's processor makes
    values, prebound = (_INSERT_VALUES, ("location_raw",)) if dialect_name() == "sqlite" else (_ROW_VALUES, ())
    count = insert_rows(Sample.__table__, (), (), ROW_COLUMNS, list(map(values, rows)), memo=_MEMO_COLUMNS,
                        skip_conflicts=True, prebound=prebound)
    if count == len(rows):
        return {row["id"] for row in rows}
    seqs = [row["seq"] for row in rows]
    mine = {(sid, seq) for sid, seq in core_execute(select(Sample.id, Sample.seq).where(
        Sample.seq.between(min(seqs), max(seqs))))}
    return {row["id"] for row in rows if (row["id"], row["seq"]) in mine}


_ROW_VALUES = itemgetter(*ROW_COLUMNS)
_INSERT_VALUES = itemgetter(*("location_raw_json" if c == "location_raw" else c for c in ROW_COLUMNS))
# columns with few distinct values in one batch: bound once per value
_MEMO_COLUMNS = ("flags", "received_at", "mock_location", "media", "held_until", "created_at", "updated_at",
                 "deleted_at")


CONTENT_COLUMNS = ("code", "parcel_code", "county_code", "state", "flags", "collected_at_raw", "collected_at",
                   "lat", "lon", "accuracy_m", "mock_location", "location_raw", "depth_top_cm",
                   "depth_bottom_cm", "sample_type", "land_use_observed", "note", "media", "extra",
                   "extension_version", "content_hash",
                   "held_until", "clock_skew_s", "data_json")


# --- versions -------------------------------------------------------------------------------
# A sample's first version lives only on its row until something supersedes it: a sync push
# stores hundreds of new samples per request, and a version row each would write every body a
# second time and add an index entry under a random key (the write that grows with the store).
# Every later version is stored when it is made, so only an unedited sample's one version is
# on its row alone; ``keep_first_version`` copies it out before the row changes
# (``audit.services.keep_first_version``, which parcels use too).

def clients_of(sample_id: str) -> list[SampleClient]:
    """Who made each version of a sample (device id, User-Agent), oldest version first."""
    return list(db.session.scalars(select(SampleClient).where(SampleClient.sample_id == sample_id)
                                   .order_by(SampleClient.version)))


def keep_first_version(sample: Sample) -> None:
    """Store version 1 of ``sample`` before its row changes (a no-op when it is stored already)."""
    if sample.version == 1:
        audit.keep_first_version("sample", sample.id, data_text(sample), sample.created_by, sample.created_at)


def versions(sample: Sample) -> list[EntityVersion]:
    """Every version of ``sample``, oldest first; an unedited sample's first one is read off its row
    (an EntityVersion that is never added to the session)."""
    def first() -> EntityVersion:
        return EntityVersion(entity_type="sample", entity_key=sample.id, version=1,
                             deleted=sample.deleted_at is not None, data_json=data_text(sample),
                             actor=sample.created_by, created_at=sample.created_at)

    return versions_for("sample", sample.id, first if sample.version == 1 else None)


def apply_edit(sample: Sample, clean: Mapping[str, Any], collected_at_utc: datetime | None, d: Derivation,
               skew_s: float | None, now: datetime, actor: Actor, action: str) -> dict[str, Any]:
    """A new version of ``sample`` with ``clean`` content; flushes (a code clash raises IntegrityError).

    The caller publishes ``SamplesChanged`` for the edited samples (once per batch); a sample that
    leaves a parcel it counted for publishes ``ParcelsChanged`` for that parcel here.
    """
    keep_first_version(sample)
    left = sample.parcel_code if sample.state not in ("held", "needs_review") else None
    before = sample_data(sample)
    row = new_row(sample.id, clean, collected_at_utc, d, 0, skew_s, now, actor, content_hash(clean))
    for column in CONTENT_COLUMNS:
        setattr(sample, column, row[column])
    sample.version += 1
    sample.seq = allocate()[0]
    sample.updated_at = now
    db.session.flush()
    set_media_links([(sample.id, clean.get("media") or [])], replace=True)
    after = sample_data(sample)
    record_many(actor.label, [Change("sample", sample.id, action, before=before, after=after,
                                     version=sample.version, after_json=sample.data_json)])
    if left is not None and left != sample.parcel_code:
        publish(ParcelsChanged((left,), actor))  # the parcel it left is graded without it
    return after


HELD_STATES = ("held", "needs_review")  # waiting for its parcel (needs_review: past the hold's TTL)


def is_held(sample: Sample) -> bool:
    """A live sample still waiting for its parcel: the one spelling of "is it held"."""
    return sample.deleted_at is None and sample.state in HELD_STATES


def require_held(sample: Sample, what: str) -> None:
    """:raise 409 not_held: naming what only held samples may do."""
    if not is_held(sample):
        raise conflict("not_held", f"Sample {sample.code} is not held; only held samples {what}.")


def link_held_sample(sample_id: str, actor: Actor) -> Sample:
    """Link a held sample (and any other held on the same parcel code) once its parcel exists.

    :raise 404: not a sample the caller may see. :raise 409 not_held, unknown_parcel.
    """
    sample = get_sample_by_id(sample_id, actor)
    require_held(sample, "are linked to their parcel")
    if link_held_samples([sample.parcel_code], actor) == 0:
        raise conflict("unknown_parcel", f"Parcel {sample.parcel_code} does not exist (or is deleted); import it "
                                         "first, or dismiss the sample.", fields={"parcel": ["unknown"]})
    return sample


def dismiss_held_sample(sample_id: str, actor: Actor, now: datetime) -> Sample:
    """Dismiss a held sample: a tombstone (every version is kept; pulls see it as deleted)."""
    sample = get_sample_by_id(sample_id, actor)
    require_held(sample, "are dismissed here")
    tombstone(sample, actor, now)
    return sample


def tombstone(sample: Sample, actor: Actor, now: datetime) -> None:
    keep_first_version(sample)
    before = sample_data(sample)
    sample.deleted_at = now
    sample.version += 1
    sample.seq = allocate()[0]
    sample.updated_at = now
    db.session.flush()
    record_many(actor.label, [Change("sample", sample.id, "delete", before=before, after=before,
                                     version=sample.version, deleted=True)])


def set_media_links(items: Iterable[tuple[str, list[dict[str, Any]]]], replace: bool = False) -> None:
    """Which blobs each sample names, so a finished upload finds the samples waiting for it."""
    items = list(items)
    if replace:
        for sample_id, _ in items:
            db.session.execute(delete(SampleMedia).where(SampleMedia.sample_id == sample_id))
    rows = [{"sample_id": sid, "sha256": m["sha256"]} for sid, media in items for m in media]
    if rows:
        db.session.execute(insert(SampleMedia), rows)


def complete_media(shas: Iterable[str]) -> set[str]:
    shas = list(set(shas))
    if not shas:
        return set()
    return set(core_execute(select(MediaBlob.sha256).where(MediaBlob.sha256.in_(shas),
                                                           MediaBlob.complete.is_(True))).scalars())


def parcels_for(codes: Iterable[str], actor: Actor) -> dict[str, ParcelInfo]:
    """Known parcels among ``codes``, each with whether ``actor`` may sample it."""
    codes = list(set(codes))
    if not codes:
        return {}
    rows = core_execute(_parcels_statement(actor), {"parcel_codes": codes}).all()
    return {code: ParcelInfo(code, county, _geometry(geometry), bool(deleted), bool(seen))
            for code, county, geometry, deleted, seen in rows}


_CODES = bindparam("parcel_codes", expanding=True)


@functools.lru_cache(maxsize=256)
def _parcels_statement(actor: Actor) -> Any:
    """The statement ``parcels_for`` runs for this actor, built once per actor (building it and its
    cache key was ~0.4 ms of every sync push). Visibility is a column of the one statement; the
    access rule reads the assignments when it runs, so a kept statement never holds an old one. The
    codes go in as one expanding parameter, not as hundreds of bound values built into the statement."""
    visible = case((and_(*parcel_scope(actor)), 1), else_=0)
    return select(Parcel.code, Parcel.county_code, Parcel.geometry_json, Parcel.deleted_at.is_not(None),
                  visible).where(Parcel.code.in_(_CODES))
_GEOMETRIES: dict[str, dict[str, Any]] = {}
_GEOMETRY_CACHE_SIZE = 20_000


def _geometry(text: str | None) -> dict[str, Any] | None:
    """Parsed parcel geometry, memoised by its stored text (parsing it was ~10 µs of every pushed
    record). Keyed by the text itself, so an edited parcel can never be judged on its old shape;
    the parsed value is only read (``derive``)."""
    if not text:
        return None
    found = _GEOMETRIES.get(text)
    if found is None:
        if len(_GEOMETRIES) >= _GEOMETRY_CACHE_SIZE:
            _GEOMETRIES.clear()
        found = _GEOMETRIES[text] = json.loads(text)
    return found


# --- media and held samples -----------------------------------------------------------------

def mark_media_complete(sha256s: Iterable[str], actor: Actor) -> int:
    """Samples naming these blobs and waiting only for complete blobs become ``complete``."""
    shas = sorted(set(sha256s))
    if not shas:
        return 0
    waiting = list(db.session.scalars(
        select(Sample).where(Sample.id.in_(select(SampleMedia.sample_id).where(SampleMedia.sha256.in_(shas))),
                             Sample.state == "awaiting_media", Sample.deleted_at.is_(None))
        .order_by(Sample.id)))
    return _complete_if_media_arrived(waiting, actor, "media_complete")


def repair_media_complete(actor: Actor = SYSTEM) -> int:
    """Housekeeping: every sample still ``awaiting_media`` although all its blobs are complete
    (a crash between publishing a blob's file and committing its row used to leave one) is
    completed now, with the same audit event and re-grade as an upload completing it."""
    waiting = list(db.session.scalars(select(Sample).where(Sample.state == "awaiting_media",
                                                           Sample.deleted_at.is_(None)).order_by(Sample.id)))
    return _complete_if_media_arrived(waiting, actor, "media_complete")


def _complete_if_media_arrived(waiting: list[Sample], actor: Actor, action: str) -> int:
    """The samples of ``waiting`` whose every manifest blob is complete turn ``complete`` (a new
    seq, so pulls see it); publishes ``SamplesChanged`` for them."""
    arrived = complete_media(m["sha256"] for s in waiting for m in s.media or [])
    done = [s for s in waiting if {m["sha256"] for m in s.media or []} <= arrived]
    if not done:
        return 0
    now = utcnow()
    for sample, seq in zip(done, allocate(len(done)), strict=True):
        sample.state, sample.seq, sample.updated_at = "complete", seq, now
    db.session.flush()
    record_many(actor.label, [Change("sample", s.id, action, after={"state": "complete"}) for s in done])
    publish(SamplesChanged(tuple(s.id for s in done), actor))  # a complete sample's results now count
    return len(done)


def link_held_samples(parcel_codes: Iterable[str], actor: Actor = SYSTEM) -> int:
    """Held samples whose parcel has just arrived are linked: flags and state recomputed.

    Runs when parcels are imported (``ParcelsImported`` in ``fieldsvc.handlers``) and from the
    console, in the caller's transaction. The location check against the
    new parcel runs now; the clock skew noted at push time is kept.
    """
    codes = list(set(parcel_codes))
    if not codes:
        return 0
    held: list[Sample] = []
    for start in range(0, len(codes), 5000):
        held += db.session.scalars(select(Sample).where(Sample.parcel_code.in_(codes[start:start + 5000]),
                                                        Sample.state.in_(HELD_STATES),
                                                        Sample.deleted_at.is_(None)))
    if not held:
        return 0
    parcels = parcels_for({s.parcel_code for s in held}, SYSTEM)
    media_done = complete_media(m["sha256"] for s in held for m in s.media or [])
    now = utcnow()
    changes, linked = [], []
    for sample, seq in zip(held, allocate(len(held)), strict=True):
        parcel = parcels.get(sample.parcel_code)
        if parcel is None or parcel.deleted:
            continue
        d = _derive_stored(sample, sample_data(sample), parcel, media_done)
        before_state = sample.state
        sample.state, sample.flags, sample.county_code = d.state, d.flags, parcel.county_code
        sample.held_until, sample.seq, sample.updated_at = None, seq, now
        changes.append(Change("sample", sample.id, "link_parcel", before={"state": before_state},
                              after={"state": d.state, "parcel": parcel.code, "flags": d.flags}))
        linked.append(sample.id)
    db.session.flush()
    record_many(actor.label, changes)
    if linked:
        publish(SamplesChanged(tuple(linked), actor))  # linked samples now count for their parcel's grade
    return len(changes)


def move_to_parcel(sample: Sample, parcel_code: str, actor: Actor) -> Sample:
    """An official puts a held sample on the parcel it was really taken on (the sampler typed a
    code that does not exist): a new version with that parcel, its fix checked against the
    parcel's shape, flags and state recomputed; version 1 keeps the code as the phone sent it.

    :raise 409 not_held: the sample is not held (or is deleted); edits of other samples come
        from their device.
    :raise 422 validation_failed (``parcel``): no such parcel in the caller's county, or deleted.
    """
    parcel_code = parcel_code.strip()
    require_held(sample, "move to another parcel")
    parcel = parcels_for([parcel_code], actor).get(parcel_code)
    if parcel is None or parcel.deleted or not parcel.visible:
        raise validation_failed({"parcel": [f"no parcel {parcel_code} in your county (or it was deleted)"]})
    content = {**sample_data(sample), "parcel": parcel.code}
    d = _derive_stored(sample, content, parcel, complete_media(m["sha256"] for m in content["media"]))
    apply_edit(sample, content, sample.collected_at, d, sample.clock_skew_s, utcnow(), actor, "move_parcel")
    publish(SamplesChanged((sample.id,), actor))
    return sample


def _derive_stored(sample: Sample, content: Mapping[str, Any], parcel: ParcelInfo, media_done: set[str]) -> Derivation:
    """A stored sample's flags and state against ``parcel``, as of its arrival: the location is
    checked anew, the clock judged at ``received_at`` with the skew noted then."""
    flags = [f for f in sample.flags or [] if f != "location_mismatch"]
    return derive(content, sample.collected_at, flags, parcel, sample.clock_skew_s, sample.received_at, 0,
                  media_done, parcel.county_code)


def expire_holds(now: datetime, actor: Actor = SYSTEM) -> int:
    """Held samples past their TTL go to ``needs_review`` (housekeeping)."""
    held = list(db.session.scalars(select(Sample).where(Sample.state == "held", Sample.held_until <= now,
                                                        Sample.deleted_at.is_(None))))
    if not held:
        return 0
    for sample, seq in zip(held, allocate(len(held)), strict=True):
        sample.state, sample.seq, sample.updated_at = "needs_review", seq, now
    db.session.flush()
    record_many(actor.label, [Change("sample", s.id, "hold_expired", before={"state": "held"},
                                     after={"state": "needs_review"}) for s in held])
    return len(held)


# --- reading --------------------------------------------------------------------------------

def sample_scope(actor: Actor) -> list[ColumnElement[bool]]:
    """``access.sample_filter``: a sampler sees samples on its assigned parcels and its own pushes;
    others their county."""
    return access.sample_filter(actor, Sample.county_code, Sample.parcel_code, Sample.device_pk, Sample.created_by)


def list_samples(args: Mapping[str, Any], actor: Actor, limit: int, now: datetime) -> Page:
    """Samples the caller may see, by parcel and state, in change order, one page."""
    rows, cursor = paginate(select(Sample).where(*sample_filter(args, actor, now)), Sample.seq, limit,
                            args.get("cursor"))
    return Page([sample_dict(s, now) for s in rows], cursor)


def get_sample_by_id(sample_id: str, actor: Actor, *, for_update: bool = False) -> Sample:
    """:raise 404: unknown or out of scope. ``for_update`` locks the row (versioned writes)."""
    stmt = select(Sample).where(Sample.id == sample_id.lower(), *sample_scope(actor))
    sample = db.session.scalar(stmt.with_for_update() if for_update else stmt)
    if sample is None:
        raise not_found("sample", sample_id)
    return sample


def sample_filter(args: Mapping[str, Any], actor: Actor, now: datetime) -> list[ColumnElement[bool]]:
    where = sample_scope(actor)
    if args.get("parcel"):
        where.append(Sample.parcel_code == args["parcel"])
    state = args.get("state")
    if state == "needs_review":
        from sqlalchemy import and_, or_

        where.append(or_(Sample.state == "needs_review", and_(Sample.state == "held", Sample.held_until <= now)))
    elif state == "held":
        where.append(Sample.state == "held")
        where.append(Sample.held_until > now)
    elif state:
        where.append(Sample.state == state)
    if not args.get("include_deleted"):
        where.append(Sample.deleted_at.is_(None))
    return where or [true()]

