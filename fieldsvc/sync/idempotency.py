"""Idempotent pushes (DESIGN §4.2): what "the same request" means for an Idempotency-Key, the
claim of a key, and the stored answer a retry gets back byte for byte. Flush, never commit."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from sqlalchemy import update

from ..auth.principal import Actor
from ..dbtypes import utcnow
from ..dbutil import upsert
from ..errors import Problem
from ..extensions import db
from .models import IdempotentPush

if TYPE_CHECKING:  # push imports this module
    from .push import Item


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
