"""Sync push, pull and conflicts (DESIGN §4.2). Flush, never commit: the request commits.

Push judges each record alone and answers per record. The fast path inserts every new,
valid record of a batch in one ``INSERT … ON CONFLICT DO NOTHING`` and re-reads what did not
go in; everything else (resends, edits, clashes, and the whole batch again if the bulk
statement fails) runs record by record inside its own SAVEPOINT, so a database error in one
record rolls back only that record. Busy/locked/serialization errors are re-raised so the
whole request answers 503 with nothing half-applied.

Pull walks the server change sequence: every change row carries a ``seq`` allocated in its
writing transaction (``fieldsvc.sequence``), so commit order is seq order and a pull that
only returns rows with ``seq <= current()`` never skips a change committed late.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping, Sequence

from sqlalchemy import String, select, text, type_coerce, update
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from ..audit.services import Change, record, record_many
from ..auth.principal import Actor
from ..dbtypes import isoformat, utcnow
from ..dbutil import core_execute, upsert
from ..devices.models import DeviceAssignment
from ..errors import Problem, conflict, not_found, validation_failed
from ..extensions import db
from ..gcpause import gc_paused
from ..places.models import FarmPark, Parcel, Region
from ..places.services import farm_park_dict, parcel_feature, parcel_scope, region_dict
from ..samples import services as samples
from ..samples.conflicts import get_conflict
from ..samples.content import content_hash
from ..samples.models import Sample, SyncConflict
from ..samples.validation import ValidatedSample, estimate_skew, validate_sample_data
from ..sequence import allocate, current
from .cursor import decode_cursor as _decode_cursor
from .cursor import encode_cursor
from .merge import merge_fields
from .models import IdempotentPush, SyncMeta

RETRYABLE = False  # every per-record outcome is final; transient trouble is a 503 for the whole request


# --- idempotency ----------------------------------------------------------------------------

def actor_key(actor: Actor) -> str:
    return actor.label


def request_digest(body: Mapping[str, Any], items: Sequence[Item]) -> str:
    """What "the same request" means for an Idempotency-Key: the same records, judged by content.

    Built from the records as checked (a valid record by its id, envelope and ``content_hash``,
    a rejected one by its canonical JSON), so a retry is recognised by meaning rather than bytes:
    key order, spacing or ``28,1`` for ``28.1`` do not make it another request, and hashing costs
    about 1 µs per record instead of re-encoding the whole body (~10 µs). ``device_sent_at`` is
    left out: a phone re-sending a stored batch stamps it with the time of *this* attempt, so the
    skew estimate is not thrown off by a batch that waited hours for a network.
    """
    lines = [f"schema_version={body.get('schema_version', 1)!r}"]
    for it, raw in zip(items, body["records"], strict=True):
        if it.result is not None:  # rejected while checking: its body as sent
            lines.append("raw\t" + _request_text(raw))
        else:
            lines.append(f"{it.id}\t{it.base_version}\t{it.deleted}\t{it.digest}")
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


_request_text = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=repr).encode


def claim_idempotency_key(actor: Actor, key: str, digest: str) -> IdempotentPush | None:
    """Claim ``key`` for this caller; returns the stored push when it was already answered.

    The claim is an INSERT … ON CONFLICT DO NOTHING: on PostgreSQL a second request with the
    same key waits for the first to commit and then reads its answer.
    :raise 422 idempotency_key_reused: the key was used for a different body.
    """
    who = actor_key(actor)
    stmt = upsert(IdempotentPush.__table__).values(actor_key=who, key=key, request_hash=digest, status_code=0,
                                                   response=None, created_at=utcnow())
    inserted = db.session.execute(stmt.on_conflict_do_nothing().returning(IdempotentPush.__table__.c.key)).scalar()
    if inserted is not None:  # (rowcount of ON CONFLICT DO NOTHING is -1 with psycopg 3; RETURNING tells)
        return None
    stored = db.session.get(IdempotentPush, (who, key))
    if stored is None:  # pragma: no cover - the row was there a moment ago; a TTL sweep raced us
        raise Problem(503, "unavailable", "Retry shortly.", headers={"Retry-After": "1"})
    if stored.request_hash != digest:
        raise Problem(422, "idempotency_key_reused",
                      "This Idempotency-Key was used for a different request body; use a new key.",
                      fields={"Idempotency-Key": ["was used for a different body"]})
    return stored


def store_idempotent_response(actor: Actor, key: str, text: str, status: int = 200) -> None:
    """Keep the answer on the claimed row (one UPDATE; the claim inserted it in this transaction)."""
    table = IdempotentPush.__table__
    db.session.execute(update(table).where(table.c.actor_key == actor_key(actor), table.c.key == key)
                       .values(response=text, status_code=status))


# --- push -----------------------------------------------------------------------------------

@dataclass
class Item:
    index: int
    id: str | None
    base_version: int | None = None
    deleted: bool = False
    checked: ValidatedSample | None = None
    digest: str | None = None
    raw_data: Any = None
    result: dict[str, Any] | None = None

    @property
    def clean(self) -> dict[str, Any]:
        return self.checked.clean  # type: ignore[union-attr]


@dataclass
class Batch:
    actor: Actor
    now: datetime
    skew_s: float | None
    hold_ttl_s: int
    parcels: dict[str, samples.ParcelInfo] = field(default_factory=dict)
    media_done: set[str] = field(default_factory=set)
    created: list[Change] = field(default_factory=list)
    links: list[tuple[str, list]] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)  # existing samples edited or deleted: re-grade them


@dataclass(frozen=True)
class Replay:
    """The stored answer to an Idempotency-Key already used for this request."""

    text: str
    status: int


def push(body: Mapping[str, Any], actor: Actor, *, hold_ttl_s: int, max_records: int,
         idempotency_key: str | None = None) -> dict[str, Any] | Replay:
    """Judge every record of a push body; returns ``{"server_time", "results"}``, or the stored
    ``Replay`` when ``idempotency_key`` already answered this request (nothing is written then)."""
    with gc_paused():  # a batch makes tens of thousands of small objects and no cycles
        return _push(body, actor, hold_ttl_s, max_records, idempotency_key)


def _push(body: Mapping[str, Any], actor: Actor, hold_ttl_s: int, max_records: int,
          key: str | None) -> dict[str, Any] | Replay:
    records = _envelope(body, max_records)
    now = utcnow()
    batch = Batch(actor, now, estimate_skew(body.get("device_sent_at"), now), hold_ttl_s)
    items = [_check_record(i, r) for i, r in enumerate(records)]
    if key is not None:  # checks read nothing stored: the claim comes before the first write
        stored = claim_idempotency_key(actor, key, request_digest(body, items))
        if stored is not None and stored.response is not None:
            return Replay(stored.response, stored.status_code)
    live = [it for it in items if it.result is None]
    allocate(1)  # take the change-sequence lock first: media completion and pushes then serialise
    batch.parcels = samples.parcels_for((it.clean["parcel"] for it in live if not it.deleted), actor)
    batch.media_done = samples.complete_media(m["sha256"] for it in live if not it.deleted
                                              for m in it.clean["media"] or [])
    for it in live:
        if not it.deleted:
            _check_parcel(it, batch)
    live = [it for it in items if it.result is None]
    slow = _fast_insert([it for it in live if not it.deleted], batch)
    for it in live:
        if it.result is None and (it.deleted or it.index in slow):
            _judge_alone(it, batch)
    _after_writes(batch)
    return {"server_time": isoformat(now), "results": [it.result for it in items]}


def _after_writes(batch: Batch) -> None:
    """Audit the new samples, link lab results held for their bag codes, re-grade edited samples."""
    from ..grading.regrade import regrade_for_samples  # grading reads samples: import at call time
    from ..lab.services import link_held_results_for

    if batch.created:
        record_many(batch.actor.label, batch.created)
        link_held_results_for([(c.entity_key, c.after["code"]) for c in batch.created], batch.actor.label)
    if batch.changed:
        regrade_for_samples(batch.changed, batch.actor)


def _envelope(body: Mapping[str, Any], max_records: int) -> list[Any]:
    errors: dict[str, list[str]] = {}
    records = body.get("records")
    if not isinstance(records, list):
        errors["records"] = ["must be a list of records"]
    elif len(records) > max_records:
        errors["records"] = [f"at most {max_records} records per push (see /api/v1/sync/config)"]
    version = body.get("schema_version", 1)
    if version != 1 or isinstance(version, bool):
        errors["schema_version"] = ["only schema_version 1 is supported"]
    sent = body.get("device_sent_at")
    if sent is not None and not isinstance(sent, str):
        errors["device_sent_at"] = ["must be an RFC 3339 time string"]
    unknown = set(body) - {"records", "schema_version", "device_sent_at"}
    for key in sorted(unknown):
        errors[key] = ["unknown field"]
    if errors:
        raise validation_failed(errors, "The push body is invalid.")
    return records  # type: ignore[return-value]


def _result(it: Item, status: str, version: int | None = None, code: str | None = None,
            errors: Mapping[str, Any] | None = None, **extra: Any) -> None:
    it.result = {"id": it.id, "status": status, "version": version, "code": code, "retryable": RETRYABLE,
                 "errors": dict(errors or {}), **extra}


def _reject(it: Item, code: str, errors: Mapping[str, Any] | None = None, version: int | None = None) -> None:
    _result(it, "rejected", version, code, errors)


def _check_record(index: int, record: Any) -> Item:
    """Envelope and data checks for one record; a bad one gets its ``rejected`` result here."""
    if not isinstance(record, Mapping):
        it = Item(index, None)
        _reject(it, "validation_failed", {"record": ["must be an object"]})
        return it
    raw_id = record.get("id")
    rid = _record_id(raw_id)
    it = Item(index, rid if rid else (raw_id if isinstance(raw_id, str) else None))
    errors: dict[str, list[str]] = {}
    if rid is None:
        errors["id"] = ["must be a UUID"]
    if record.get("type", "sample") != "sample":
        _reject(it, "unsupported_type", {"type": ["only 'sample' records are pushed"]})
        return it
    base = record.get("base_version")
    if base is not None and (isinstance(base, bool) or not isinstance(base, int) or base < 1):
        errors["base_version"] = ["must be null or a version number >= 1"]
    deleted = record.get("deleted", False)
    if not isinstance(deleted, bool):
        errors["deleted"] = ["must be true or false"]
    unknown = set(record) - {"type", "id", "base_version", "deleted", "data"}
    for key in sorted(unknown):
        errors[key] = ["unknown field"]
    it.base_version, it.deleted = base if isinstance(base, int) else None, deleted is True
    if not it.deleted:
        it.raw_data = record.get("data")
        it.checked = validate_sample_data(it.raw_data, samples.RULES)
        errors.update({f"data.{k}" if k != "data" else k: v for k, v in it.checked.errors.items()})
    if errors:
        _reject(it, "validation_failed", errors)
        return it
    if not it.deleted:
        it.digest = content_hash(it.clean)
    return it


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _record_id(raw: Any) -> str | None:
    """The record id as a canonical lower-case UUID, or None. Ids as our clients send them
    match the pattern and are already canonical (~0.3 µs); any other spelling ``uuid.UUID``
    accepts (upper case, braces, ``urn:uuid:``) is parsed and rewritten."""
    if not isinstance(raw, str) or len(raw) > 45:
        return None
    if _CANONICAL_UUID.fullmatch(raw):
        return raw
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        return None


def _check_parcel(it: Item, batch: Batch) -> None:
    parcel = batch.parcels.get(it.clean["parcel"])
    if parcel is None:
        return  # held until the parcel arrives
    if not parcel.visible:
        _reject(it, "not_assigned", {"data.parcel": [f"parcel {parcel.code} is not assigned to you"]})
    elif parcel.deleted:
        _reject(it, "parcel_deleted", {"data.parcel": [f"parcel {parcel.code} was deleted"]})


def _derive(it: Item, batch: Batch) -> samples.Derivation:
    return samples.derive(it.clean, it.checked.collected_at_utc, it.checked.flags,  # type: ignore[union-attr]
                          batch.parcels.get(it.clean["parcel"]), batch.skew_s, batch.now, batch.hold_ttl_s,
                          batch.media_done, batch.actor.county_code, fix_flagged=True)


def _fast_insert(items: list[Item], batch: Batch) -> set[int]:
    """Insert every plainly new record at once; returns the indexes that need judging alone.

    One ``INSERT … ON CONFLICT DO NOTHING`` for the batch (a record repeated within it goes in
    once); whatever did not go in (a resend, an edit, a taken bag code) is judged alone.
    """
    if not items:
        return set()
    seen_ids: set[str] = set()
    seen_codes: set[str] = set()
    slow: set[int] = set()
    fresh: list[Item] = []
    for it in items:
        code = it.clean["code"]
        if it.id in seen_ids or code in seen_codes:
            slow.add(it.index)
        else:
            fresh.append(it)
        seen_ids.add(it.id)  # type: ignore[arg-type]
        seen_codes.add(code)
    rows, derived = [], {}
    for it, seq in zip(fresh, allocate(len(fresh)), strict=True):
        d = derived[it.index] = _derive(it, batch)
        rows.append(samples.new_row(it.id, it.clean, it.checked.collected_at_utc, d, seq,  # type: ignore
                                    batch.skew_s, batch.now, batch.actor, it.digest))  # type: ignore[arg-type]
    # Unique clashes are skipped by the statement; anything else (bad data the checks missed) drops
    # the whole statement in its savepoint and every record is judged alone.
    try:
        with db.session.begin_nested():
            inserted = samples.insert_new_samples(rows)
    except (IntegrityError, DataError):
        return slow | {it.index for it in fresh}
    kept = [(it, row) for it, row in zip(fresh, rows, strict=True) if it.id in inserted]
    slow |= {it.index for it in fresh if it.id not in inserted}
    samples.set_media_links((it.id, it.clean["media"]) for it, _ in kept if it.clean["media"])  # type: ignore
    for it, row in kept:
        _created(it, row, derived[it.index], batch)
    return slow


def _created(it: Item, row: dict[str, Any], d: samples.Derivation, batch: Batch) -> None:
    # after_json: the row's data_json, so the audit digest reuses the one serialisation; no version
    # row: version 1 lives on the sample's row until an edit stores it (samples.keep_first_version)
    batch.created.append(Change("sample", it.id, "create", after=it.clean,  # type: ignore[arg-type]
                                after_json=row["data_json"]))
    if d.state == "held":
        _result(it, "held", 1, "unknown_parcel", state="held", held_until=isoformat(d.held_until))
    else:
        _result(it, "applied", 1, None, state=d.state)


def _judge_alone(it: Item, batch: Batch) -> None:
    """One record in its own SAVEPOINT: a database error rolls back only this record."""
    try:
        with db.session.begin_nested():
            _judge(it, batch)
    except OperationalError:
        raise  # busy/locked: the whole request becomes 503 (fieldsvc.http)
    except IntegrityError as exc:
        if _bag_code_clash(exc) and it.checked is not None:
            _code_clash(it, batch)
        else:
            _reject(it, "integrity_error", {"record": ["conflicts with stored data"]})
    except DataError as exc:
        _reject(it, "validation_failed", {"data": [str(exc.orig).splitlines()[0][:200]]})


def _bag_code_clash(exc: IntegrityError) -> bool:
    """The unique bag code refused the row (by constraint name, never by the row's text: a
    PostgreSQL error's DETAIL quotes the failing row, whose data holds the word "code")."""
    message = str(exc.orig).splitlines()[0].lower()
    return "uq_samples_code" in message or "samples.code" in message


def _judge(it: Item, batch: Batch) -> None:
    sample = db.session.get(Sample, it.id, populate_existing=True)
    if it.deleted:
        return _judge_delete(it, sample, batch)
    if sample is None:
        return _insert_one(it, batch)
    if sample.deleted_at is not None:
        # Decision: a tombstone wins. An old device resending a deleted sample is told so and
        # nothing changes; an official can still read every version of it.
        return _reject(it, "deleted", {"id": ["this sample was deleted on the server"]}, sample.version)
    if sample.content_hash == it.digest:
        return _result(it, "duplicate", sample.version, None, state=samples.effective_state(sample, batch.now))
    server = samples.sample_data(sample)
    base = _version_data(sample.id, it.base_version) if it.base_version is not None else None
    if it.base_version is not None and it.base_version == sample.version:
        return _apply(it, sample, it.clean, batch, "update", "applied")
    if base is None:
        cid = _keep_conflict(it, batch, "id_conflict", "id_conflict", sample, server,
                             hard=[k for k in it.clean if _differs(k, server, it.clean)], soft=[])
        return _result(it, "conflict", sample.version, "id_conflict", conflict_id=cid)
    merged = merge_fields(base, server, it.clean)
    if merged.status == "unchanged":
        return _result(it, "duplicate", sample.version, None, state=samples.effective_state(sample, batch.now))
    if merged.status == "applied":
        return _apply(it, sample, it.clean, batch, "update", "applied")
    content = _revalidate(merged.merged)
    if merged.status == "merged" and content is not None:
        _apply(it, sample, content, batch, "merge", "merged")
        cid = _keep_conflict(it, batch, "soft", "soft_conflict", sample, server, hard=[],
                             soft=list(merged.soft_fields), status="resolved")
        it.result["soft_fields"], it.result["conflict_id"] = list(merged.soft_fields), cid  # type: ignore[index]
        return None
    version = sample.version
    if content is not None and content_hash(content) != sample.content_hash:
        version = _apply(it, sample, content, batch, "provisional_merge", "conflict")
    cid = _keep_conflict(it, batch, "hard", "edit_conflict", sample, server, hard=list(merged.hard_fields),
                         soft=list(merged.soft_fields), provisional=merged.provisional)
    _result(it, "conflict", version, "edit_conflict", conflict_id=cid, hard_fields=list(merged.hard_fields))


def _differs(name: str, a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    from ..samples.content import canonical_field

    return canonical_field(name, a.get(name)) != canonical_field(name, b.get(name))


def _revalidate(content: Mapping[str, Any]) -> dict[str, Any] | None:
    """A merged body is two valid halves; check the whole (e.g. depth order) before applying it."""
    data = dict(content)
    if isinstance(data.get("location"), Mapping):
        data["location"] = {k: v for k, v in data["location"].items() if k != "raw"}
    checked = validate_sample_data(data, samples.RULES)
    if not checked.ok:
        return None
    clean = checked.clean
    if isinstance(content.get("location"), Mapping) and clean.get("location"):
        clean["location"]["raw"] = content["location"].get("raw", clean["location"].get("raw"))
    return clean


def _apply(it: Item, sample: Sample, content: dict[str, Any], batch: Batch, action: str, status: str) -> int:
    from ..samples.validation import parse_rfc3339

    parcel = batch.parcels.get(content["parcel"])
    if content["parcel"] not in batch.parcels:
        batch.parcels.update(samples.parcels_for([content["parcel"]], batch.actor))
        parcel = batch.parcels.get(content["parcel"])
    if parcel is not None and not parcel.visible:
        _reject(it, "not_assigned", {"data.parcel": [f"parcel {parcel.code} is not assigned to you"]},
                sample.version)
        return sample.version
    media_done = batch.media_done | samples.complete_media(m["sha256"] for m in content.get("media") or [])
    flags = [f for f in (it.checked.flags if it.checked else []) if f in ("null_island", "low_accuracy",
                                                                           "mock_location")]
    collected = parse_rfc3339(content["collected_at"]) if content.get("collected_at") else None
    d = samples.derive(content, collected, flags, parcel, batch.skew_s, batch.now, batch.hold_ttl_s, media_done,
                       sample.county_code or batch.actor.county_code)
    samples.apply_edit(sample, content, collected, d, batch.skew_s, batch.now, batch.actor, action)
    batch.changed.add(sample.id)
    _result(it, status, sample.version, None if status in ("applied", "merged") else "edit_conflict",
            state=sample.state)
    return sample.version


def _insert_one(it: Item, batch: Batch) -> None:
    d = _derive(it, batch)
    row = samples.new_row(it.id, it.clean, it.checked.collected_at_utc, d, allocate()[0],  # type: ignore
                          batch.skew_s, batch.now, batch.actor, it.digest)  # type: ignore[arg-type]
    clash = db.session.scalar(select(Sample.id).where(Sample.code == it.clean["code"]))
    if clash is not None:
        return _code_clash(it, batch)
    samples.insert_sample(row)  # a racing twin raises IntegrityError → savepoint
    samples.set_media_links([(it.id, it.clean["media"] or [])])  # type: ignore[list-item]
    _created(it, row, d, batch)


def _code_clash(it: Item, batch: Batch) -> None:
    """Another sample already has this bag code: a conflict, never merged; both bodies kept."""
    other = db.session.scalar(select(Sample).where(Sample.code == it.clean["code"]))
    if other is not None and other.id == it.id:  # pragma: no cover - same record raced in
        return _result(it, "duplicate", other.version, None)
    server = samples.sample_data(other) if other is not None else None
    cid = _keep_conflict(it, batch, "duplicate_sample_code", "duplicate_sample_code", other, server,
                         hard=["code"], soft=[])
    _result(it, "conflict", None, "duplicate_sample_code",
            {"data.code": [f"bag code {it.clean['code']} belongs to another sample"]}, conflict_id=cid)


def _judge_delete(it: Item, sample: Sample | None, batch: Batch) -> None:
    if sample is None:
        return _reject(it, "unknown_record", {"id": ["no such sample on the server"]})
    if sample.deleted_at is not None:
        return _result(it, "duplicate", sample.version, "deleted")
    if it.base_version is not None and it.base_version != sample.version:
        it.digest = content_hash({"deleted": True, "base_version": it.base_version})
        cid = _keep_conflict(it, batch, "hard", "delete_conflict", sample, samples.sample_data(sample),
                             hard=["deleted"], soft=[], incoming={"deleted": True})
        return _result(it, "conflict", sample.version, "delete_conflict", conflict_id=cid)
    samples.tombstone(sample, batch.actor, batch.now)
    batch.changed.add(sample.id)
    return _result(it, "applied", sample.version, None, deleted=True)


def _version_data(sample_id: str, version: int) -> dict[str, Any] | None:
    from ..audit.models import EntityVersion

    row = db.session.scalar(select(EntityVersion).where(EntityVersion.entity_type == "sample",
                                                        EntityVersion.entity_key == sample_id,
                                                        EntityVersion.version == version))
    return row.data if row is not None else None


def _keep_conflict(it: Item, batch: Batch, kind: str, code: str, sample: Sample | None,
                   server: dict[str, Any] | None, *, hard: list[str], soft: list[str],
                   provisional: dict[str, Any] | None = None, status: str = "open",
                   incoming: dict[str, Any] | None = None) -> int:
    """Keep both bodies; the same incoming body for the same record is kept once."""
    body = incoming if incoming is not None else it.clean
    values = {
        "record_type": "sample", "record_id": it.id, "kind": kind, "code": code,
        "base_version": it.base_version, "server_version": sample.version if sample is not None else None,
        "server_record_id": sample.id if sample is not None else None, "server_body": server,
        "incoming_body": body, "incoming_hash": it.digest, "hard_fields": sorted(hard), "soft_fields": sorted(soft),
        "provisional": provisional, "status": status,
        "resolution": "auto_merge" if status == "resolved" else None,
        "resolved_by": "system" if status == "resolved" else None,
        "resolved_at": batch.now if status == "resolved" else None,
        "county_code": (sample.county_code if sample is not None else None) or batch.actor.county_code,
        "created_by": batch.actor.label, "created_at": batch.now,
    }
    stmt = upsert(SyncConflict.__table__).values(values).on_conflict_do_nothing().returning(
        SyncConflict.__table__.c.id)
    if db.session.execute(stmt).scalar() is not None:
        record(batch.actor.label, Change("sync_conflict", it.id, f"conflict_{kind}",  # type: ignore[arg-type]
                                         after={"kind": kind, "code": code, "hard": hard, "soft": soft}))
    return db.session.scalar(select(SyncConflict.id).where(SyncConflict.record_id == it.id,
                                                           SyncConflict.kind == kind,
                                                           SyncConflict.incoming_hash == it.digest))


# --- resolving conflicts --------------------------------------------------------------------

def resolve_conflict(conflict_id: int, resolution: str, values: Mapping[str, Any], actor: Actor) -> SyncConflict:
    """An official decides: keep the server's values, take the phone's, or give merged values.

    Every resolution that touches a sample makes a new version of it (audited). For a bag
    code clash the incoming sample did not exist yet: ``take_incoming``/``merge`` insert it
    (with ``values`` applied, typically a corrected ``code``).
    """
    c = get_conflict(conflict_id, actor)
    if c.status != "open":
        raise conflict("conflict_resolved", f"Conflict {conflict_id} is already resolved.", resolution=c.resolution)
    now = utcnow()
    batch = Batch(actor, now, None, 0)
    it = Item(0, c.record_id, base_version=None, digest=c.incoming_hash)
    version: int | None = None
    if c.kind == "duplicate_sample_code":
        if resolution != "keep_server":
            content = dict(c.incoming_body)
            content.update(values)
            clean = _must_revalidate(content)
            if db.session.scalar(select(Sample.id).where(Sample.code == clean["code"])) is not None:
                raise conflict("duplicate_sample_code", f"Bag code {clean['code']} is taken; send values.code.",
                               fields={"values.code": ["is taken by another sample"]})
            it.checked = ValidatedSample(clean, {}, [], None)
            it.digest = content_hash(clean)
            batch.parcels = samples.parcels_for([clean["parcel"]], _unscoped(actor))
            batch.media_done = samples.complete_media(m["sha256"] for m in clean["media"] or [])
            from ..samples.validation import parse_rfc3339

            it.checked = ValidatedSample(clean, {}, [], parse_rfc3339(clean["collected_at"]))
            _insert_one(it, batch)
            version = 1
    else:
        sample = db.session.get(Sample, c.record_id)
        if sample is None:
            raise not_found("sample", c.record_id)
        current_data = samples.sample_data(sample)
        if c.code == "delete_conflict":
            if resolution == "take_incoming":
                samples.tombstone(sample, actor, now)
                batch.changed.add(sample.id)
            version = sample.version
        else:
            content = dict(current_data)
            if resolution == "take_incoming":
                incoming = c.incoming_body
                fields = c.hard_fields or [k for k in incoming]
                content.update({k: incoming.get(k) for k in fields})
            elif resolution == "merge":
                content.update(values)
            clean = _must_revalidate(content)
            batch.parcels = samples.parcels_for([clean["parcel"]], _unscoped(actor))
            it.checked = ValidatedSample(clean, {}, [f for f in sample.flags or []
                                                      if f in ("null_island", "low_accuracy", "mock_location")])
            _apply(it, sample, clean, batch, f"resolve_{resolution}", "applied")
            version = sample.version
    c.status, c.resolution, c.resolved_values = "resolved", resolution, dict(values) or None
    c.resolved_version, c.resolved_by, c.resolved_at = version, actor.label, now
    db.session.flush()
    batch.changed.add(c.record_id)  # an open hard conflict kept this sample out of grading
    _after_writes(batch)
    record(actor.label, Change("sync_conflict", str(c.id), "resolve",
                               after={"resolution": resolution, "values": dict(values), "version": version}))
    return c


def _unscoped(actor: Actor) -> Actor:
    return Actor(actor.user_id, actor.username, actor.role, actor.county_code)


def _must_revalidate(content: Mapping[str, Any]) -> dict[str, Any]:
    data = dict(content)
    if isinstance(data.get("location"), Mapping):
        data["location"] = {k: v for k, v in data["location"].items() if k != "raw"}
    checked = validate_sample_data(data, samples.RULES)
    if not checked.ok:
        raise validation_failed({f"values.{k}": v for k, v in checked.errors.items()}, "Resolved sample is invalid.")
    return checked.clean


# --- pull -----------------------------------------------------------------------------------

EPOCH = "epoch"


def epoch() -> str:
    """This database's cursor epoch, made once (a rebuilt database gets a new one)."""
    value = db.session.scalar(select(SyncMeta.value).where(SyncMeta.name == EPOCH))
    if value is None:
        db.session.execute(upsert(SyncMeta.__table__).values(name=EPOCH, value=secrets.token_hex(8))
                           .on_conflict_do_nothing())
        value = db.session.scalar(select(SyncMeta.value).where(SyncMeta.name == EPOCH))
    return value


def decode_cursor(text: str | None, epoch_value: str, latest: int):
    return _decode_cursor(text, epoch_value, latest_seq=latest)


@dataclass
class Scope:
    """What one caller may pull: parcels via ``parcel_scope``, and the regions and parks around them."""

    actor: Actor
    scope_version: int  # the device's assignment version; 0 for an account
    parcel_where: list[Any]
    region_codes: set[str] | None  # None: every region in the county scope
    park_codes: set[str] | None


# What a device's regions and parks depend on: which database (its cursor epoch, random per
# database), the device's assignment (version and rows) and the places themselves; every write to
# those allocates a change seq, so these marks move with any of them.
_SCOPE_MARKS = text(
    "SELECT d.version, (SELECT value FROM sync_meta WHERE name = :epoch),"
    " (SELECT max(seq) FROM device_assignments WHERE device_pk = d.id),"
    " (SELECT max(seq) FROM parcels), (SELECT max(seq) FROM regions) FROM devices d WHERE d.id = :pk")
_DEVICE_PLACES: dict[tuple[Any, ...], tuple[frozenset[str], frozenset[str]]] = {}


def scope_for(actor: Actor) -> Scope:
    """The caller's pull scope. A device's regions and parks are worked out once per state of its
    assignment and of the places (a pull asks on every page; working them out was ~15 % of a page)
    and kept in this process under the marks read from the database, so a cached answer is only
    ever used for the state it was computed from."""
    parcel_where = parcel_scope(actor)
    if actor.device_pk is None:
        return Scope(actor, 0, parcel_where, None, None)
    version, database, *marks = db.session.execute(_SCOPE_MARKS, {"pk": actor.device_pk, "epoch": EPOCH}).one()
    key = (database, actor.device_pk, actor.county_code, version, *marks)
    places = _DEVICE_PLACES.get(key) if database is not None else None
    if places is None:
        places = _device_places(actor, parcel_where)
        if database is not None:
            if len(_DEVICE_PLACES) >= 1024:
                _DEVICE_PLACES.clear()
            _DEVICE_PLACES[key] = places
    regions, parks = places
    return Scope(actor, version, parcel_where, set(regions), set(parks))


def _device_places(actor: Actor, parcel_where: list[Any]) -> tuple[frozenset[str], frozenset[str]]:
    """The regions (assigned villages and their parents) and farm parks around a device's parcels."""
    assigned = db.session.execute(select(DeviceAssignment.kind, DeviceAssignment.code).where(
        DeviceAssignment.device_pk == actor.device_pk, DeviceAssignment.active.is_(True))).all()
    villages = {c for k, c in assigned if k == "village"}
    parcels = [c for k, c in assigned if k == "parcel"]
    if parcels:
        villages |= set(db.session.scalars(select(Parcel.village_code).where(Parcel.code.in_(parcels))))
    parks = set(db.session.scalars(select(Parcel.farm_park_code).distinct().where(
        *parcel_where, Parcel.farm_park_code.is_not(None))))
    return frozenset(_with_parents(villages)), frozenset(parks)


def _with_parents(codes: set[str]) -> set[str]:
    found, frontier = set(codes), set(codes)
    while frontier:
        parents = set(db.session.scalars(select(Region.parent_code).where(Region.code.in_(frontier),
                                                                           Region.parent_code.is_not(None))))
        frontier = parents - found
        found |= parents
    return found


def _region_where(scope: Scope) -> list[Any]:
    from ..places.services import county_scope

    if scope.region_codes is None:
        return [county_scope(Region.county_code, scope.actor)]
    return [Region.code.in_(scope.region_codes)] if scope.region_codes else [Region.id < 0]


def _park_where(scope: Scope) -> list[Any]:
    from ..places.services import county_scope

    if scope.park_codes is None:
        return [county_scope(FarmPark.county_code, scope.actor)]
    return [FarmPark.code.in_(scope.park_codes)] if scope.park_codes else [FarmPark.id < 0]


def _sample_where(scope: Scope) -> list[Any]:
    # ``parcel_code || ''``: an expression, so SQLite walks the seq index (ORDER BY seq LIMIT n stops
    # after a page) and tests each row's parcel, instead of reading every in-scope sample through the
    # parcel index and sorting them all for every page (quadratic over a full pull of a large store).
    return [Sample.parcel_code.concat("").in_(select(Parcel.code).where(*scope.parcel_where))]


def _change(kind: str, key: str, version: int, deleted: bool, data: Any, seq: int) -> dict[str, Any]:
    return {"type": kind, "id": key, "version": version, "deleted": deleted, "data": data, "seq": seq}


def _region_change(r: Region, seq: int | None = None, deleted: bool = False) -> dict[str, Any]:
    return _change("region", r.code, r.version, deleted, region_dict(r), seq or r.seq)


def _park_change(p: FarmPark, seq: int | None = None, deleted: bool = False) -> dict[str, Any]:
    return _change("farm_park", p.code, p.version, deleted, farm_park_dict(p), seq or p.seq)


def _parcel_change(p: Parcel, seq: int | None = None, deleted: bool | None = None) -> dict[str, Any]:
    gone = p.deleted_at is not None if deleted is None else deleted
    return _change("parcel", p.code, p.version, gone, parcel_feature(p), seq or p.seq)


def _sample_change(s: Sample, now: datetime, seq: int | None = None, deleted: bool | None = None) -> dict:
    gone = s.deleted_at is not None if deleted is None else deleted
    return _change("sample", s.id, s.version, gone, samples.sample_dict(s, now), seq or s.seq)


def _assignment_change(a: DeviceAssignment) -> dict[str, Any]:
    return _change("assignment", f"{a.kind}:{a.code}", a.seq, not a.active,
                   {"kind": a.kind, "code": a.code, "active": a.active}, a.seq)


def pull(actor: Actor, cursor_text: str | None, limit: int) -> dict[str, Any]:
    """One page of changes after the cursor, in seq order; see the module docstring."""
    return json.loads(pull_text(actor, cursor_text, limit))


_ROW_COLUMNS = {
    0: [Region.code, Region.name, Region.name_en, Region.level, Region.parent_code, Region.county_code,
        Region.version, Region.seq],
    1: [FarmPark.code, FarmPark.name, FarmPark.name_en, FarmPark.county_code, FarmPark.area_m2,
        FarmPark.geometry_json, FarmPark.version, FarmPark.seq],
    2: [Parcel.code, Parcel.village_code, Parcel.county_code, Parcel.farm_park_code, Parcel.land_use, Parcel.crop,
        Parcel.area_m2, Parcel.area_computed, Parcel.geometry_json, Parcel.version, Parcel.updated_at,
        Parcel.deleted_at, Parcel.seq],
}
# Samples: the stored data text plus the server-made columns, read as the driver hands them over
# (times and flags unprocessed; ``_SampleText`` turns each distinct value into JSON text once).
_SAMPLE_COLUMNS = [Sample.id, Sample.data_json, Sample.version, Sample.state, Sample.clock_skew_s, Sample.seq,
                   type_coerce(Sample.flags, String).label("flags"),
                   *(type_coerce(c, String).label(c.key) for c in (Sample.held_until, Sample.received_at,
                                                                     Sample.collected_at, Sample.updated_at,
                                                                     Sample.deleted_at))]
_dump = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode
_escape = json.encoder.encode_basestring  # == _dump of a str


def pull_text(actor: Actor, cursor_text: str | None, limit: int) -> str:
    """``pull`` as the JSON text sent to the phone.

    Two passes: the seqs of up to ``limit + 1`` candidates per kind (index-only, cheap) pick
    the page; then only the page's rows are read, as plain Core rows, and written out with
    each parcel's stored (canonical) geometry text spliced in rather than parsed and
    re-encoded.
    """
    latest = current()
    ep = epoch()
    position = decode_cursor(cursor_text, ep, latest)
    after = position.seq
    scope = scope_for(actor)
    # The assignment changed since this cursor was issued: assignment rows then carry what was gained/lost.
    rescoped = after > 0 and position.scope_version != scope.scope_version
    now = utcnow()
    fetch = limit + 1
    sources = {0: (Region, _region_where(scope)), 1: (FarmPark, _park_where(scope)),
               2: (Parcel, scope.parcel_where), 3: (Sample, _sample_where(scope))}
    candidates: list[tuple[int, int]] = []
    sample_rows: list[Any] = []
    for order, (model, where) in sources.items():
        if order == 3:  # samples are most of a store: read their (small) rows in this one pass
            sample_rows = core_execute(select(*_SAMPLE_COLUMNS).where(  # (Core rows: no ORM row handling)
                *where, Sample.seq > after, Sample.seq <= latest).order_by(Sample.seq).limit(fetch)).all()
            candidates += [(row.seq, 3) for row in sample_rows]
            continue
        stmt = (select(model.seq).where(*where, model.seq > after, model.seq <= latest)
                .order_by(model.seq).limit(fetch))
        candidates += [(seq, order) for seq in core_execute(stmt).scalars()]
    if actor.device_pk is not None:
        stmt = (select(DeviceAssignment.seq).where(DeviceAssignment.device_pk == actor.device_pk,
                                                   DeviceAssignment.seq > after, DeviceAssignment.seq <= latest)
                .order_by(DeviceAssignment.seq).limit(fetch))
        candidates += [(seq, 4) for seq in core_execute(stmt).scalars()]
    candidates.sort()
    page = candidates[:limit]
    if len(candidates) > limit:  # never split one seq across pages
        last = page[-1][0]
        page += [c for c in candidates[limit:] if c[0] == last]
    has_more = len(candidates) > len(page)
    counts: dict[int, int] = {}
    for _seq, order in page:
        counts[order] = counts.get(order, 0) + 1
    rows: dict[int, Any] = {}
    sample_text = _SampleText(now, [row for row in sample_rows[:counts.get(3, 0)] if row.data_json is None])
    for order, n in counts.items():
        if order == 3:
            rows[3] = iter(sample_rows)  # the page's samples are the first of them, in seq order
        elif order == 4:
            rows[4] = iter(db.session.scalars(
                select(DeviceAssignment).where(DeviceAssignment.device_pk == actor.device_pk,
                                               DeviceAssignment.seq > after, DeviceAssignment.seq <= latest)
                .order_by(DeviceAssignment.seq).limit(n)).all())
        else:
            model, where = sources[order]
            rows[order] = iter(core_execute(
                select(*_ROW_COLUMNS[order]).where(*where, model.seq > after, model.seq <= latest)
                .order_by(model.seq).limit(n)).all())
    parts: list[str] = []
    for _seq, order in page:
        row = next(rows[order])
        if order == 0:
            parts.append(_dump(_region_change(row)))
        elif order == 1:
            parts.append(_dump(_park_change(row)))
        elif order == 2:
            parts.append(_parcel_change_text(row))
        elif order == 3:
            parts.append(sample_text.change(row))
        else:
            parts.append(_dump(_assignment_change(row)))
            if rescoped:
                parts += [_dump(c) for c in _expand_assignment(row, scope, after, now)]
    next_seq = page[-1][0] if has_more else latest
    cursor = encode_cursor(next_seq, scope.scope_version, ep)
    return f'{{"changes":[{",".join(parts)}],"cursor":"{cursor}","has_more":{"true" if has_more else "false"}}}'


class _SampleText:
    """Sample changes as JSON text: the server-made fields, then the stored ``data_json`` spliced in.

    Gives the same object as ``_sample_change`` (keys in another order). Each distinct time or
    flags value is converted once per page (a batch's rows share their received/updated times);
    rows without ``data_json`` get it built from their columns (``samples.data_text``).
    """

    def __init__(self, now: datetime, missing: list[Any]) -> None:
        self.now = now
        dialect = db.session.get_bind().dialect
        self._to_time = Sample.__table__.c.received_at.type.dialect_impl(dialect).result_processor(dialect, None)
        self._times: dict[Any, tuple[datetime | None, str]] = {None: (None, "null")}
        self._flags: dict[Any, str] = {}
        self._data: dict[str, str] = {}
        if missing:
            found = db.session.scalars(select(Sample).where(Sample.id.in_([row.id for row in missing])))
            self._data = {s.id: samples.data_text(s) for s in found}

    def _time(self, raw: Any) -> tuple[datetime | None, str]:
        got = self._times.get(raw)
        if got is None:
            moment = self._to_time(raw) if self._to_time is not None else raw
            got = self._times[raw] = (moment, f'"{isoformat(moment)}"')
        return got

    def _flag_text(self, raw: Any) -> str:
        got = self._flags.get(raw) if isinstance(raw, str | None) else None
        if got is None:
            value = json.loads(raw) if isinstance(raw, str) else raw
            got = _dump(list(value or []))
            if isinstance(raw, str | None):
                self._flags[raw] = got
        return got

    def change(self, row: Any) -> str:
        held_until, held_text = self._time(row.held_until)
        state = row.state
        if state == "held" and held_until is not None and held_until <= self.now:
            state = "needs_review"  # samples.effective_state
        skew = row.clock_skew_s
        data = row.data_json if row.data_json is not None else self._data[row.id]
        gone = "false" if row.deleted_at is None else "true"
        sid = _escape(row.id)  # (a string: the C escaper ``_dump`` itself uses, without its call overhead)
        server = (f'{{"clock_skew_s":{"null" if skew is None else _dump(skew)},'
                  f'"collected_at_parsed":{self._time(row.collected_at)[1]},'
                  f'"deleted":{gone},"flags":{self._flag_text(row.flags)},"held_until":{held_text},'
                  f'"id":{sid},"received_at":{self._time(row.received_at)[1]},"state":{_escape(state)},'
                  f'"updated_at":{self._time(row.updated_at)[1]},"version":{int(row.version)}')
        server += f",{data[1:]}" if data != "{}" else "}"
        return (f'{{"data":{server},"deleted":{gone},"id":{sid},"seq":{int(row.seq)},'
                f'"type":"sample","version":{int(row.version)}}}')


class _NoGeometry:
    """A parcel row whose geometry reads as ``0``, so ``parcel_feature`` stays the one definition of a
    parcel's properties while its stored geometry text is spliced in unparsed."""

    __slots__ = ("_row",)
    geometry_json = "0"

    def __init__(self, row: Any) -> None:
        self._row = row

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, name)


_FEATURE_HEAD = '{"geometry":0,'
_CHANGE_HEAD = '{"data":null,'


def _parcel_change_text(row: Any) -> str:
    feature = _dump(parcel_feature(_NoGeometry(row)))  # type: ignore[arg-type]
    change = _dump(_change("parcel", row.code, row.version, row.deleted_at is not None, None, row.seq))
    assert feature.startswith(_FEATURE_HEAD) and change.startswith(_CHANGE_HEAD)
    return (f'{{"data":{{"geometry":{row.geometry_json},{feature[len(_FEATURE_HEAD):]},'
            f'{change[len(_CHANGE_HEAD):]}')


def _expand_assignment(a: DeviceAssignment, scope: Scope, after: int, now: datetime) -> list[dict[str, Any]]:
    """What an assignment change means for the device, sent at the assignment's seq.

    Gained: the places and samples it did not have yet (rows at or before the cursor; newer
    rows come in the normal stream). Lost: deletes for whatever is no longer in scope.
    """
    where_parcels = [Parcel.village_code == a.code] if a.kind == "village" else [Parcel.code == a.code]
    out: list[dict[str, Any]] = []
    if a.active:
        parcels = list(db.session.scalars(select(Parcel).where(*where_parcels, *scope.parcel_where)))
        codes = [p.code for p in parcels]
        village_codes = {p.village_code for p in parcels} | ({a.code} if a.kind == "village" else set())
        regions = db.session.scalars(select(Region).where(Region.code.in_(_with_parents(village_codes)),
                                                          Region.seq <= after))
        out += [_region_change(r, a.seq) for r in regions]
        parks = {p.farm_park_code for p in parcels if p.farm_park_code}
        out += [_park_change(p, a.seq) for p in db.session.scalars(
            select(FarmPark).where(FarmPark.code.in_(parks), FarmPark.seq <= after))]
        out += [_parcel_change(p, a.seq) for p in parcels if p.seq <= after]
        out += [_sample_change(s, now, a.seq) for s in db.session.scalars(
            select(Sample).where(Sample.parcel_code.in_(codes), Sample.seq <= after))] if codes else []
        return out
    in_scope = select(Parcel.code).where(*scope.parcel_where)
    lost = list(db.session.scalars(select(Parcel).where(*where_parcels, Parcel.code.not_in(in_scope))))
    codes = [p.code for p in lost]
    out += [_parcel_change(p, a.seq, deleted=True) for p in lost]
    if codes:
        out += [_sample_change(s, now, a.seq, deleted=True) for s in db.session.scalars(
            select(Sample).where(Sample.parcel_code.in_(codes)))]
    gone_parks = {p.farm_park_code for p in lost if p.farm_park_code} - (scope.park_codes or set())
    out += [_park_change(p, a.seq, deleted=True) for p in db.session.scalars(
        select(FarmPark).where(FarmPark.code.in_(gone_parks)))]
    villages = {p.village_code for p in lost} | ({a.code} if a.kind == "village" else set())
    gone_regions = _with_parents(villages) - (scope.region_codes or set())
    out += [_region_change(r, a.seq, deleted=True) for r in db.session.scalars(
        select(Region).where(Region.code.in_(gone_regions)))]
    return out
