"""Time-based changes, run from cron by ``flask --app app housekeeping`` (no in-process timers).

- held samples past their TTL → ``needs_review`` (reads already show it; this makes it stored
  and pulls see the change);
- sync push receipts (Idempotency-Key) older than ``IDEMPOTENCY_TTL_S`` are dropped;
- media blobs and partial uploads that no sample names, untouched for ``MEDIA_ORPHAN_TTL_S``,
  are removed;
- samples still ``awaiting_media`` although every blob they name is complete (left by a crash
  before this was fixed) become ``complete``, re-graded through the event chain like an upload.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Mapping

from sqlalchemy import delete

from .dbtypes import utcnow
from .extensions import db
from .media import services as media
from .samples import services as samples
from .sync.models import IdempotentPush


def run(config: Mapping[str, Any], now: datetime | None = None) -> dict[str, int]:
    """Do every housekeeping job once; flushes, the caller commits."""
    now = now or utcnow()
    held = samples.expire_holds(now)
    repaired = samples.repair_media_complete()
    receipts = db.session.execute(delete(IdempotentPush).where(
        IdempotentPush.created_at < now - timedelta(seconds=config["IDEMPOTENCY_TTL_S"]))).rowcount
    orphans = media.remove_orphans(now - timedelta(seconds=config["MEDIA_ORPHAN_TTL_S"]), media.storage())
    db.session.flush()
    return {"held_to_needs_review": held, "media_samples_repaired": repaired,
            "idempotency_receipts_dropped": receipts, "orphan_media_removed": orphans}
