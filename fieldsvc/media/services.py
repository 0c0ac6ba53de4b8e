"""Resumable uploads: the offset lives in ``media_blobs`` and the row is locked per chunk.

Rules (DESIGN §4.2): a chunk is appended at the stored offset; a chunk that starts before
the offset must match what is stored (then only its new tail is appended, or nothing);
a gap is refused with the offset to resume from. When the last byte arrives the SHA-256 is
checked: a mismatch drops the partial data and the blob row. A completed blob publishes
``MediaCompleted``; samples naming it then turn ``complete`` once every item of their manifest
has arrived (``fieldsvc.handlers``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from flask import current_app
from sqlalchemy import delete, exists, select

from .. import access
from ..audit.services import Change, record
from ..auth.principal import Actor
from ..dbtypes import utcnow
from ..dbutil import upsert
from ..errors import Problem, not_found, validation_failed
from ..events import MediaCompleted, publish
from ..extensions import db
from ..sequence import allocate
from .models import MediaBlob, SampleMedia
from .storage import BLOCK, FileStorage, MediaStorage

SHA256 = re.compile(r"[0-9a-f]{64}")
_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


def storage() -> MediaStorage:
    """The configured store: files under ``<instance>/media``."""
    return FileStorage(Path(current_app.instance_path) / "media")


def check_sha(sha256: str) -> str:
    sha = sha256.lower()
    if not SHA256.fullmatch(sha):
        raise validation_failed({"sha256": ["must be 64 hex digits"]})
    return sha


def parse_content_range(header: str | None, content_length: int) -> tuple[int, int, int]:
    """``bytes start-end/total`` (inclusive end); no header means the whole file in one request."""
    if not header:
        if content_length < 1:
            raise validation_failed({"Content-Range": ["send bytes start-end/total, or the whole file"]})
        return 0, content_length - 1, content_length
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        raise validation_failed({"Content-Range": ["must look like 'bytes 0-1048575/20971520'"]})
    start, end, total = (int(g) for g in match.groups())
    if not start <= end < total:
        raise validation_failed({"Content-Range": ["needs start <= end < total"]})
    if end - start + 1 != content_length:
        raise validation_failed({"Content-Range": [f"says {end - start + 1} bytes but the body has "
                                                   f"{content_length}"]})
    return start, end, total


@dataclass(frozen=True)
class Upload:
    sha256: str
    offset: int
    total: int
    complete: bool
    status: int  # 201 just completed, 200 already complete, 308 more to send


def get_blob(sha256: str) -> MediaBlob:
    blob = db.session.get(MediaBlob, sha256)
    if blob is None:
        raise not_found("media", sha256)
    return blob


def blob_status(sha256: str) -> Upload:
    blob = get_blob(sha256)
    return Upload(sha256, blob.received_bytes, blob.total_bytes, blob.complete, 200 if blob.complete else 308)


def _lock_blob(sha256: str, total: int, actor: Actor) -> MediaBlob:
    now = utcnow()
    db.session.execute(upsert(MediaBlob.__table__).values(
        sha256=sha256, total_bytes=total, received_bytes=0, complete=False, created_by=actor.label,
        created_at=now, updated_at=now).on_conflict_do_nothing())
    return db.session.scalars(select(MediaBlob).where(MediaBlob.sha256 == sha256).with_for_update()
                              .execution_options(populate_existing=True)).one()


def _read_exactly(stream: BinaryIO, length: int) -> bytes:
    data = stream.read(length)
    if len(data) != length:
        raise Problem(400, "incomplete_chunk", "The body ended before Content-Length bytes arrived.")
    return data


def _blocks(stream: BinaryIO, length: int) -> Iterator[bytes]:
    left = length
    while left > 0:
        block = stream.read(min(BLOCK, left))
        if not block:
            return
        left -= len(block)
        yield block


def receive_chunk(sha256: str, start: int, end: int, total: int, stream: BinaryIO, actor: Actor,
                  store: MediaStorage) -> Upload | Problem:
    """Apply one chunk. Returns a Problem (instead of raising) when dropped data must stay dropped."""
    blob = _lock_blob(sha256, total, actor)
    if blob.total_bytes != total:
        raise Problem(409, "total_mismatch", f"This upload is {blob.total_bytes} bytes, not {total}.",
                      headers={"Upload-Offset": str(blob.received_bytes)}, offset=blob.received_bytes,
                      total=blob.total_bytes)
    if not blob.complete and store.exists(sha256):  # a crash between publishing the file and the commit
        allocate(1)  # the change-sequence lock, as below
        blob.received_bytes, blob.complete, blob.completed_at = total, True, utcnow()
        db.session.flush()
        record(actor.label, Change("media", sha256, "upload_complete", after={"total": total, "recovered": True}))
        publish(MediaCompleted((sha256,), actor))
        return Upload(sha256, total, total, True, 200)
    if blob.complete:
        return Upload(sha256, total, total, True, 200)
    offset = blob.received_bytes
    if start > offset:
        raise Problem(409, "offset_mismatch", f"Resume at byte {offset}; this chunk starts at {start}.",
                      headers={"Upload-Offset": str(offset)}, offset=offset)
    length = end - start + 1
    overlap = min(end + 1, offset) - start
    if overlap > 0:
        sent = _read_exactly(stream, overlap)
        if sent != store.read_partial(sha256, start, overlap):
            raise Problem(409, "chunk_mismatch", "This chunk differs from the bytes already received.",
                          headers={"Upload-Offset": str(offset)}, offset=offset)
    tail = length - max(overlap, 0)
    if tail > 0:
        written = store.write_at(sha256, offset, _blocks(stream, tail))
        if written != tail:
            raise Problem(400, "incomplete_chunk", "The body ended before Content-Length bytes arrived.",
                          headers={"Upload-Offset": str(offset)}, offset=offset)
        blob.received_bytes = offset + tail
        blob.updated_at = utcnow()
    if blob.received_bytes < total:
        db.session.flush()
        return Upload(sha256, blob.received_bytes, total, False, 308)
    allocate(1)  # the change-sequence lock: a sample pushed concurrently sees this blob, or we see it
    if not store.finish(sha256, total):
        db.session.execute(delete(MediaBlob).where(MediaBlob.sha256 == sha256))
        record(actor.label, Change("media", sha256, "hash_mismatch", after={"total": total}))
        return Problem(422, "hash_mismatch", "The bytes received do not have this SHA-256; the partial "
                       "upload was dropped, send the file again from byte 0.", headers={"Upload-Offset": "0"},
                       offset=0)
    blob.complete, blob.completed_at = True, utcnow()
    db.session.flush()
    record(actor.label, Change("media", sha256, "upload_complete", after={"total": total}))
    publish(MediaCompleted((sha256,), actor))  # samples waiting for it may now be complete
    return Upload(sha256, total, total, True, 201)


def may_read(sha256: str, actor: Actor) -> None:
    """``access.media_filter``: a blob named by a sample the caller may see, or one it uploaded.
    Any other blob is absent (404), whether or not it exists."""
    seen = db.session.scalar(select(exists().where(MediaBlob.sha256 == sha256,
                                                   *access.media_filter(actor, MediaBlob.sha256,
                                                                        MediaBlob.created_by))))
    if not seen:
        raise not_found("media", sha256)


def remove_orphans(older_than, store: MediaStorage) -> int:
    """Blobs (and partial uploads) that no sample names, untouched since ``older_than``."""
    named = select(SampleMedia.sha256).where(SampleMedia.sha256 == MediaBlob.sha256)
    rows = list(db.session.scalars(select(MediaBlob.sha256).where(~named.exists(),
                                                                  MediaBlob.updated_at < older_than)))
    for sha in rows:
        store.drop(sha)
    if rows:
        db.session.execute(delete(MediaBlob).where(MediaBlob.sha256.in_(rows)))
    return len(rows)
