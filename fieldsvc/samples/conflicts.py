"""Sync conflicts as sample versions: the two bodies a push kept, read and listed for an official.

A sync push keeps a conflict and an official's resolution makes a new sample version (both in
``fieldsvc.sync``). Open ``hard`` and ``id_conflict`` conflicts keep a sample out of grading.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from .. import access
from ..auth.principal import Actor
from ..dbtypes import isoformat
from ..errors import not_found
from ..extensions import db
from ..paging import Page, paginate
from .models import SyncConflict


def conflict_dict(c: SyncConflict) -> dict[str, Any]:
    return {"id": c.id, "record_type": c.record_type, "record_id": c.record_id, "kind": c.kind, "code": c.code,
            "base_version": c.base_version, "server_version": c.server_version,
            "server_record_id": c.server_record_id, "server_body": c.server_body, "incoming_body": c.incoming_body,
            "hard_fields": c.hard_fields, "soft_fields": c.soft_fields, "provisional": c.provisional,
            "status": c.status, "resolution": c.resolution, "resolved_values": c.resolved_values,
            "resolved_version": c.resolved_version, "resolved_by": c.resolved_by,
            "resolved_at": isoformat(c.resolved_at), "created_by": c.created_by,
            "created_at": isoformat(c.created_at)}


def conflict_filter(args: Mapping[str, Any], actor: Actor) -> list[Any]:
    where = [access.record_filter(actor, SyncConflict.county_code)]
    if args.get("record"):
        where.append(SyncConflict.record_id == args["record"].lower())
    if args.get("status"):
        where.append(SyncConflict.status == args["status"])
    if args.get("kind"):
        where.append(SyncConflict.kind == args["kind"])
    return where


def list_conflicts(args: Mapping[str, Any], actor: Actor, limit: int) -> Page:
    """Conflicts the caller may see, by record, status and kind, one page."""
    rows, cursor = paginate(select(SyncConflict).where(*conflict_filter(args, actor)), SyncConflict.id, limit,
                            args.get("cursor"))
    return Page([conflict_dict(c) for c in rows], cursor)


def get_conflict(conflict_id: int, actor: Actor) -> SyncConflict:
    row = db.session.scalar(select(SyncConflict).where(SyncConflict.id == conflict_id,
                                                       *conflict_filter({}, actor)))
    if row is None:
        raise not_found("conflict", conflict_id)
    return row
