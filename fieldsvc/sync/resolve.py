"""An official resolves a conflict a push kept: keep the server's values, take the phone's, or
give merged values; the sample is re-applied through push's own judging, so it gets a new
version (audited) and its parcel is re-graded. Flush, never commit."""

from __future__ import annotations

from typing import Any, Mapping

from sqlalchemy import select

from ..audit.services import Change, record
from ..auth.principal import Actor
from ..dbtypes import utcnow
from ..errors import conflict, not_found, validation_failed
from ..extensions import db
from ..samples import services as samples
from ..samples.conflicts import get_conflict
from ..samples.content import content_hash
from ..samples.models import Sample, SyncConflict
from ..samples.validation import ValidatedSample, parse_rfc3339, validate_sample_data
from .push import Batch, Item, _after_writes, _apply, _check_extra, _insert_one, flat_fields, unflat_fields


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
            it.checked = ValidatedSample(clean, {}, [], parse_rfc3339(clean["collected_at"]))
            _insert_one(it, batch)
            version = 1
    else:
        sample = db.session.get(Sample, c.record_id, populate_existing=True, with_for_update=True)
        if sample is None:
            raise not_found("sample", c.record_id)
        current_data = samples.sample_data(sample)
        if c.code == "delete_conflict":
            if resolution == "take_incoming":
                samples.tombstone(sample, actor, now)
                batch.changed.add(sample.id)
            version = sample.version
        else:
            content = flat_fields(current_data)  # an extra answer is a field of its own (``extra.<question>``)
            if resolution == "take_incoming":
                incoming = flat_fields(c.incoming_body)
                fields = c.hard_fields or [k for k in incoming]
                content.update({k: incoming.get(k) for k in fields})
            elif resolution == "merge":
                content.update(flat_fields(values))
            clean = _must_revalidate(unflat_fields(content))
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
    clean = checked.clean
    if "extra" in clean and (errors := _check_extra(clean, {})):
        raise validation_failed({f"values.{k.removeprefix('data.')}": v for k, v in errors.items()},
                                "Resolved sample is invalid.")
    return clean
