"""Write audit events and entity versions; flush, never commit (the request does)."""

from __future__ import annotations

import hashlib
import json
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import insert, select

from ..dbtypes import utcnow
from ..extensions import db
from .models import AuditEvent, EntityVersion

request_id_var: ContextVar[str | None] = ContextVar("fieldsvc_request_id", default=None)


def canonical_json(value: Any) -> str:
    """The one serialisation that audit digests and stored versions share."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def digest(value: Any) -> str | None:
    """sha256 of the canonical JSON form; None stays None (nothing before a create)."""
    return None if value is None else _sha(canonical_json(value))


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Change:
    """One write to one entity, as the audit log and the version history see it."""

    entity_type: str
    entity_key: str
    action: str
    before: Any = None
    after: Any = None
    version: int | None = None
    deleted: bool = False
    after_json: str | None = None  # ``canonical_json(after)`` when the caller already has it (bulk imports)

    def after_text(self) -> str | None:
        if self.after_json is not None:
            return self.after_json
        return None if self.after is None else canonical_json(self.after)


def record(actor: str, change: Change, details: dict[str, Any] | None = None) -> None:
    record_many(actor, [change], details)


def record_many(actor: str, changes: Iterable[Change], details: dict[str, Any] | None = None) -> int:
    """Append one audit event per change, and a version row where the change carries one."""
    now = utcnow()
    request_id = request_id_var.get()
    events, versions = [], []
    for c in changes:
        after = c.after_text()
        events.append(
            {
                "at": now, "actor": actor, "action": c.action, "entity_type": c.entity_type,
                "entity_key": c.entity_key, "before_digest": digest(c.before),
                "after_digest": None if after is None else _sha(after), "request_id": request_id,
                "details": details,
            }
        )
        if c.version is not None:
            versions.append(
                {
                    "entity_type": c.entity_type, "entity_key": c.entity_key, "version": c.version,
                    "deleted": c.deleted, "data_json": after if after is not None else canonical_json(c.before),
                    "actor": actor, "created_at": now,
                }
            )
    if events:
        db.session.execute(insert(AuditEvent.__table__), events)
    if versions:
        db.session.execute(insert(EntityVersion.__table__), versions)
    return len(events)


def events_for(entity_type: str, entity_key: str) -> list[AuditEvent]:
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.entity_type == entity_type, AuditEvent.entity_key == entity_key)
        .order_by(AuditEvent.id)
    )
    return list(db.session.scalars(stmt))


def versions_for(entity_type: str, entity_key: str) -> list[EntityVersion]:
    stmt = (
        select(EntityVersion)
        .where(EntityVersion.entity_type == entity_type, EntityVersion.entity_key == entity_key)
        .order_by(EntityVersion.version)
    )
    return list(db.session.scalars(stmt))
