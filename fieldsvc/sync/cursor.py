"""Opaque pull cursors: a position in the server's change sequence, never a time.

ANCHORS part 1, lessons 7 and 10: the pull cursor is a server value, and a cursor the
server can no longer honour must say so, so the phone resyncs from scratch (410
``cursor_expired``) instead of silently missing changes.

A cursor is 25 bytes, base64url without padding (34 characters)::

    version (1) | epoch tag (4) | seq (8) | scope_version (8) | check (4)

- ``seq`` is the last server change sequence the device has seen; ``scope_version`` is
  the version of the device's assignment it was computed for.
- The *epoch* names one life of the database (a restore from backup or a rebuild starts a
  new one); a cursor from another epoch points into a sequence that no longer exists.
- ``check`` is the first 4 bytes of a SHA-256 over the rest: it catches typos, truncation
  and random strings (a guess passes with odds of 2^-32 per try, and would also need the
  right version byte and epoch tag). It is not a signature and need not be: a forged
  cursor only moves the device's own read position, and every pull is still filtered by
  the device's assignment.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from dataclasses import dataclass
from typing import Any

from fieldsvc.errors import Problem

_VERSION = 1
_BODY = struct.Struct(">B4sQQ")
_CHECK_BYTES = 4
_MAX = 2**63 - 1  # fits a signed 64-bit column on both database engines
_TEXT = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class Cursor:
    """Where a device's pull resumes: after ``seq``, for assignment ``scope_version``."""

    seq: int
    scope_version: int


START = Cursor(0, 0)


def encode_cursor(seq: int, scope_version: int, epoch: str) -> str:
    """The URL-safe text of a cursor. Raises ValueError for values no cursor can hold."""
    for name, value in (("seq", seq), ("scope_version", scope_version)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX:
            raise ValueError(f"{name} must be an integer from 0 to 2**63 - 1")
    body = _BODY.pack(_VERSION, _epoch_tag(epoch), seq, scope_version)
    return base64.urlsafe_b64encode(body + _check(body)).rstrip(b"=").decode("ascii")


def decode_cursor(text: Any, epoch: str, *, latest_seq: int | None = None) -> Cursor:
    """Read a cursor from a pull request; None or ``""`` means "from the start".

    Raises ``Problem(410, "cursor_expired")`` with ``details.reason`` one of ``malformed``,
    ``tampered``, ``wrong_epoch`` or ``ahead_of_server`` (a ``seq`` beyond
    ``latest_seq``, the newest sequence the server has issued, when it is given).
    """
    if text is None or text == "":
        return START
    raw = _unbase64(text)
    if raw is None or len(raw) != _BODY.size + _CHECK_BYTES:
        raise _expired("malformed")
    body, check = raw[: _BODY.size], raw[_BODY.size :]
    if not hmac.compare_digest(check, _check(body)):
        raise _expired("tampered")
    version, tag, seq, scope_version = _BODY.unpack(body)
    if version != _VERSION or seq > _MAX or scope_version > _MAX:
        raise _expired("malformed")
    if not hmac.compare_digest(tag, _epoch_tag(epoch)):
        raise _expired("wrong_epoch")
    if latest_seq is not None and seq > latest_seq:
        raise _expired("ahead_of_server")
    return Cursor(seq, scope_version)


def _unbase64(text: Any) -> bytes | None:
    """Strict base64url: the right alphabet, no padding, and only the canonical spelling."""
    if not isinstance(text, str) or not _TEXT.fullmatch(text):
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != text:
        return None
    return raw


def _epoch_tag(epoch: str) -> bytes:
    if not isinstance(epoch, str) or not epoch:
        raise ValueError("epoch must be a non-empty string")
    return hashlib.sha256(b"fieldsvc cursor epoch\0" + epoch.encode("utf-8")).digest()[:4]


def _check(body: bytes) -> bytes:
    return hashlib.sha256(b"fieldsvc cursor\0" + body).digest()[:_CHECK_BYTES]


def _expired(reason: str) -> Problem:
    return Problem(
        410,
        "cursor_expired",
        "This sync cursor can no longer be used; pull again from the start (no cursor).",
        reason=reason,
    )
