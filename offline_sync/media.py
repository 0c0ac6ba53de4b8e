"""Media on the device: copy-and-hash at creation, resumable upload by sha256 (DESIGN §4.2).

Upload: ``HEAD /api/v1/media/<sha256>`` says how much the server has (200 complete, 308 with
``Upload-Offset``, 404 nothing), then ``PUT`` chunks of ``preferred_chunk_bytes`` with
``Content-Range`` from that offset. After any failure the client asks again with HEAD instead
of re-sending the chunk, so bytes the server confirmed are never sent twice (ANCHORS part 1,
lesson 4: nobody else resumes at byte level).
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .http import SyncError, TransientError, Transport

log = logging.getLogger("offline_sync")
BLOCK = 1024 * 1024


class MediaRejected(SyncError):
    """The server refused this blob for good (e.g. the local file no longer has its hash)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class StoredMedia:
    name: str
    sha256: str
    bytes: int
    mime: str
    path: str


def store_file(source: str | os.PathLike[str], media_dir: Path) -> StoredMedia:
    """Copy ``source`` into ``media_dir`` under its sha256 while hashing it (one read)."""
    digest = hashlib.sha256()
    size = 0
    fd, tmp = tempfile.mkstemp(dir=media_dir, prefix=".incoming-")
    try:
        with open(source, "rb") as src, os.fdopen(fd, "wb") as dst:
            while block := src.read(BLOCK):
                digest.update(block)
                dst.write(block)
                size += len(block)
            dst.flush()
            os.fsync(dst.fileno())
        sha = digest.hexdigest()
        target = media_dir / sha
        if target.exists():
            os.unlink(tmp)
        else:
            os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    mime = (mimetypes.guess_type(str(source))[0] or "application/octet-stream").lower()
    return StoredMedia(Path(source).name, sha, size, mime, str(target))


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _offset(transport: Transport, sha: str, total: int) -> int | None:
    """Bytes the server holds; None when it has the whole blob."""
    resp = transport.send_once("HEAD", f"/api/v1/media/{sha}")
    if resp.status == 200:
        return None
    if resp.status == 404:
        return 0
    if resp.status == 308:
        return int(resp.header("upload-offset", "0") or 0)
    raise MediaRejected(resp.code or f"http_{resp.status}", f"HEAD media answered {resp.status}")


def upload(transport: Transport, path: str, sha: str, total: int, chunk_bytes: int,
           on_progress=None) -> int:
    """Send the blob from wherever the server stopped; returns the bytes sent by this call.

    Raises TransientError when the link stays bad for the retry policy's attempts (the next
    sync resumes at the server's offset), MediaRejected when the blob can never go.
    """
    chunk_bytes = max(1, chunk_bytes)
    sent = 0
    failures = 0
    restarted = False
    while True:
        try:
            offset = _offset(transport, sha, total)
            while offset is not None:
                if offset >= total:  # the server has every byte but has not answered complete yet
                    offset = _offset(transport, sha, total)
                    continue
                with open(path, "rb") as fh:
                    fh.seek(offset)
                    data = fh.read(min(chunk_bytes, total - offset))
                if not data:
                    raise MediaRejected("local_file_short", f"local copy of {sha} is shorter than {total} bytes")
                headers = {"Content-Type": "application/octet-stream",
                           "Content-Range": f"bytes {offset}-{offset + len(data) - 1}/{total}"}
                sent += len(data)
                resp = transport.send_once("PUT", f"/api/v1/media/{sha}", data, headers)
                failures = 0
                if resp.status in (200, 201):
                    offset = None
                elif resp.status == 308:
                    offset = int(resp.header("upload-offset", str(offset + len(data))) or 0)
                elif resp.status == 409 and resp.code in ("offset_mismatch", "chunk_mismatch"):
                    offset = int(resp.header("upload-offset", "0") or 0)
                elif resp.status == 422 and resp.code == "hash_mismatch" and not restarted:
                    if file_sha256(path) != sha:
                        raise MediaRejected("local_file_corrupt", f"local copy of {sha} no longer has that hash")
                    restarted, offset = True, 0  # the server dropped the partial data; once more from 0
                else:
                    raise MediaRejected(resp.code or f"http_{resp.status}",
                                        f"PUT media answered {resp.status} {resp.code or ''}")
                if on_progress is not None and offset is not None:
                    on_progress(offset)
            return sent
        except TransientError as exc:
            failures += 1
            log.warning("media %s…: %s (failure %d)", sha[:12], exc, failures)
            if failures >= transport.policy.max_attempts:
                raise
            transport.backoff(failures - 1, exc.retry_after)

