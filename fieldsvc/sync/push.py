"""Sync push (DESIGN §4.2). Flush, never commit: the request commits.

Push judges each record alone and answers per record. The fast path inserts every new,
valid record of a batch in one ``INSERT … ON CONFLICT DO NOTHING`` and re-reads what did not
go in; everything else (resends, edits, clashes, and the whole batch again if the bulk
statement fails) runs record by record inside its own SAVEPOINT, so a database error in one
record rolls back only that record. Busy/locked/serialization errors are re-raised so the
whole request answers 503 with nothing half-applied. A clash is kept as a conflict
(``fieldsvc.samples.models.SyncConflict``) with both bodies.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Mapping

from sqlalchemy import select
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from ..audit.models import EntityVersion
from ..audit.services import Change, insert_rows, record, record_many
from ..auth.principal import Actor
from ..dbtypes import isoformat, utcnow
from ..dbutil import upsert
from ..errors import validation_failed
from ..events import SamplesChanged, SamplesCreated, publish
from ..extensions import db
from ..openrosa import extensions as form_extensions
from ..samples import services as samples
from ..samples.content import canonical_field, content_hash
from ..samples.models import Sample, SampleClient, SyncConflict
from ..samples.validation import ValidatedSample, estimate_skew, parse_rfc3339, validate_sample_data
from ..sequence import allocate
from .idempotency import claim_idempotency_key, request_digest
from .merge import merge_fields

RETRYABLE = False  # every per-record outcome is final; transient trouble is a 503 for the whole request


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
    made: list[tuple[str, int]] = field(default_factory=list)  # (sample id, version) this batch wrote
    client: Client | None = None


@dataclass(frozen=True)
class Client:
    """Who sends the push, kept with each sample version it makes (``sample_clients``)."""

    channel: str = "sync"  # sync | openrosa
    device_id: str | None = None  # the device's id (sync) or Collect's ``deviceID`` (openrosa)
    user_agent: str | None = None


@dataclass(frozen=True)
class Replay:
    """The stored answer to an Idempotency-Key already used for this request."""

    text: str
    status: int


def push(body: Mapping[str, Any], actor: Actor, *, hold_ttl_s: int, max_records: int,
         idempotency_key: str | None = None, client: Client | None = None) -> dict[str, Any] | Replay:
    """Judge every record of a push body; returns ``{"server_time", "results"}``, or the stored
    ``Replay`` when ``idempotency_key`` already answered this request (nothing is written then).
    ``client`` (device id, User-Agent) is kept with every sample version the push makes."""
    return _push(body, actor, hold_ttl_s, max_records, idempotency_key, client)


def _push(body: Mapping[str, Any], actor: Actor, hold_ttl_s: int, max_records: int,
          key: str | None, client: Client | None = None) -> dict[str, Any] | Replay:
    records = _envelope(body, max_records)
    now = utcnow()
    batch = Batch(actor, now, estimate_skew(body.get("device_sent_at"), now), hold_ttl_s, client=client)
    forms: dict[int, Any] = {}  # extension version → its questions, looked up once per batch
    items = [_check_record(i, r, forms) for i, r in enumerate(records)]
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
    """Audit the new samples and publish what the batch did: ``SamplesCreated`` (lab results held
    for their bag codes are linked) and ``SamplesChanged`` for edited samples (re-graded)."""
    if batch.created:
        record_many(batch.actor.label, batch.created)
        publish(SamplesCreated(tuple((c.entity_key, c.after["code"]) for c in batch.created), batch.actor))
    if batch.changed:
        publish(SamplesChanged(tuple(sorted(batch.changed)), batch.actor))
    _keep_clients(batch)


def _keep_clients(batch: Batch) -> None:
    """One ``sample_clients`` row per sample version the batch made: the device and the app."""
    if batch.client is None or not batch.made:
        return
    c = batch.client
    # what the whole batch shares is bound once (``fixed``); each row is only (sample id, version)
    insert_rows(SampleClient.__table__, ("channel", "device_id", "user_agent", "device_pk", "received_at"),
                (c.channel, (c.device_id or "")[:128] or None, (c.user_agent or "")[:255] or None,
                 batch.actor.device_pk, batch.now),
                ("sample_id", "version"), list(dict.fromkeys(batch.made)), skip_conflicts=True)


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


def _check_record(index: int, record: Any, forms: dict[int, Any] | None = None) -> Item:
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
    if not record.keys() <= _RECORD_KEYS:
        for key in sorted(set(record) - _RECORD_KEYS):
            errors[key] = ["unknown field"]
    it.base_version, it.deleted = base if isinstance(base, int) else None, deleted is True
    if not it.deleted:
        it.raw_data = record.get("data")
        it.checked = validate_sample_data(it.raw_data, samples.RULES)
        errors.update({f"data.{k}" if k != "data" else k: v for k, v in it.checked.errors.items()})
        if "extra" in it.checked.clean and not it.checked.errors:
            errors.update(_check_extra(it.checked.clean, forms if forms is not None else {}))
    if errors:
        _reject(it, "validation_failed", errors)
        return it
    if not it.deleted:
        it.digest = content_hash(it.clean)
    return it


_RECORD_KEYS = frozenset({"type", "id", "base_version", "deleted", "data"})


def _check_extra(clean: dict[str, Any], forms: dict[int, Any]) -> dict[str, list[str]]:
    """Type ``clean["extra"]`` against the form extension version the answers were given in
    (``clean["extension_version"]``), in place; the errors name ``data.extra.<question>``. An
    ``image`` answer must name a file of the sample's ``media`` (its photo travels like the others)."""
    version = clean["extension_version"]
    typed, errors = form_extensions.check_values(clean["extra"], version, forms)
    if "" in errors:
        return {"data.extension_version": errors[""]}
    out = {f"data.extra.{name}": messages for name, messages in errors.items()}
    kinds = {name: q["type"] for name, q in (forms.get(version) or {}).items()}
    names = {m["name"] for m in clean.get("media") or []}
    for name, value in typed.items():
        if kinds.get(name) == "image" and value not in names:
            out[f"data.extra.{name}"] = [f"Must name a file of data.media (no file named {value!r})."]
    clean["extra"] = typed
    return out


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
    batch.made.append((it.id, 1))  # type: ignore[arg-type]
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
    # (locked: a concurrent edit, resolve or move of this sample waits instead of being overwritten)
    sample = db.session.get(Sample, it.id, populate_existing=True, with_for_update=True)
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
    merged = _merge(base, server, it.clean)
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


def _merge(base: Mapping[str, Any], server: Mapping[str, Any], incoming: Mapping[str, Any]) -> Any:
    """``merge_fields`` with each ``extra`` answer as a field of its own (``extra.<question>``), so
    two phones answering different custom questions merge like two phones changing different fields."""
    result = merge_fields(flat_fields(base), flat_fields(server), flat_fields(incoming))
    return replace(result, merged=unflat_fields(result.merged))


def flat_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in data.items() if k != "extra"}
    out.update({f"extra.{name}": value for name, value in (data.get("extra") or {}).items()})
    return out


def unflat_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in data.items() if not k.startswith("extra.")}
    extra = {k.removeprefix("extra."): v for k, v in data.items() if k.startswith("extra.") and v is not None}
    if extra:
        out["extra"] = extra
    return out


def _differs(name: str, a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
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
    if "extra" in clean and _check_extra(clean, {}):
        return None  # answers from two extension versions that do not fit one: kept as a conflict
    if isinstance(content.get("location"), Mapping) and clean.get("location"):
        clean["location"]["raw"] = content["location"].get("raw", clean["location"].get("raw"))
    return clean


def _apply(it: Item, sample: Sample, content: dict[str, Any], batch: Batch, action: str, status: str) -> int:
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
    batch.made.append((sample.id, sample.version))
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
