"""Where media bytes live: a small interface, and content-addressed files under the instance folder.

An object store can replace ``FileStorage`` by implementing ``MediaStorage``; offsets and
completeness are kept in the database (``media_blobs``), never in process memory, so several
app processes can take chunks of one upload.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import BinaryIO, Iterator, Protocol, runtime_checkable

BLOCK = 256 * 1024


@runtime_checkable
class MediaStorage(Protocol):
    def write_at(self, sha256: str, offset: int, chunks: Iterator[bytes]) -> int:
        """Write ``chunks`` into the partial file at ``offset`` (dropping anything after it); bytes written."""

    def read_partial(self, sha256: str, offset: int, length: int) -> bytes:
        """Bytes already received, to compare a re-sent chunk."""

    def finish(self, sha256: str, size: int) -> bool:
        """Check the partial file's SHA-256; on a match fsync and publish it, else drop it. True when kept."""

    def drop(self, sha256: str) -> None:
        """Remove the blob and any partial data."""

    def exists(self, sha256: str) -> bool: ...

    def open(self, sha256: str) -> BinaryIO: ...

    def path(self, sha256: str) -> Path: ...


class FileStorage:
    """``<root>/<aa>/<sha256>`` for finished blobs, ``<root>/partial/<sha256>.part`` while uploading."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        (self.root / "partial").mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def _partial(self, sha256: str) -> Path:
        return self.root / "partial" / f"{sha256}.part"

    def write_at(self, sha256: str, offset: int, chunks: Iterator[bytes]) -> int:
        path = self._partial(sha256)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        written = 0
        with os.fdopen(fd, "r+b") as fh:
            fh.truncate(offset)
            fh.seek(offset)
            for chunk in chunks:
                fh.write(chunk)
                written += len(chunk)
            fh.flush()
        return written

    def read_partial(self, sha256: str, offset: int, length: int) -> bytes:
        try:
            with open(self._partial(sha256), "rb") as fh:
                fh.seek(offset)
                return fh.read(length)
        except FileNotFoundError:
            return b""

    def finish(self, sha256: str, size: int) -> bool:
        partial = self._partial(sha256)
        digest = hashlib.sha256()
        with open(partial, "r+b") as fh:
            fh.truncate(size)
            while block := fh.read(BLOCK):
                digest.update(block)
            if digest.hexdigest() != sha256:
                ok = False
            else:
                fh.flush()
                os.fsync(fh.fileno())
                ok = True
        if not ok:
            partial.unlink(missing_ok=True)
            return False
        target = self.path(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, target)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return True

    def drop(self, sha256: str) -> None:
        self._partial(sha256).unlink(missing_ok=True)
        self.path(sha256).unlink(missing_ok=True)

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def open(self, sha256: str) -> BinaryIO:
        return open(self.path(sha256), "rb")
