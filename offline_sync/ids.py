"""Time-ordered sample ids: UUID version 7 (RFC 9562 §5.7).

Why not ``uuid4``: the server files every sample under the id its device made, in B-tree indexes
(the samples' primary key, the audit trail's entity index). Random ids put each new record on a
random page of each index, so once a county holds a million samples every record pushed dirties
a page of its own in each one, and the push slows several-fold (``bench/sync.py`` measures
both). An id that starts with its creation time in milliseconds lands beside the ids made just
before it, and a batch of 500 touches a handful of pages. The other 74 bits stay random, so two
phones offline in the same millisecond still cannot collide in practice.

Within one process the ids only ever increase (RFC 9562 §6.2, method 2: the random part of the
previous id plus one when the clock has not moved on or has stepped back). Python 3.14's
``uuid.uuid7`` does the same; this module uses it where it exists.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid

_RAND_BITS = 74  # 12 bits of rand_a + 62 bits of rand_b
_lock = threading.Lock()
_last = (0, 0)  # (unix_ms, random part) of the previous id


def _next(ms: int) -> tuple[int, int]:
    """The next (unix_ms, random) pair: never smaller than the previous one."""
    global _last
    with _lock:
        last_ms, last_rand = _last
        if ms > last_ms:
            rand = secrets.randbits(_RAND_BITS)
        else:  # same millisecond, or the clock stepped back: keep counting from the last id
            ms, rand = last_ms, last_rand + 1
            if rand >> _RAND_BITS:  # 2**74 ids in one millisecond: borrow the next one
                ms, rand = ms + 1, secrets.randbits(_RAND_BITS - 1)
        _last = (ms, rand)
        return ms, rand


def _uuid7(unix_ms: int | None = None) -> uuid.UUID:
    ms, rand = _next(time.time_ns() // 1_000_000 if unix_ms is None else unix_ms)
    rand_a, rand_b = rand >> 62, rand & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return uuid.UUID(int=value)


def new_sample_id() -> str:
    """A fresh sample id: a UUIDv7 in its canonical lower-case text form."""
    return str(uuid7())


uuid7 = getattr(uuid, "uuid7", _uuid7)
