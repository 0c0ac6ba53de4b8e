"""One process-wide pause of the cyclic garbage collector, shared by the bulk paths."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_GC_LOCK = threading.Lock()
_GC_HOLDS = [0, False]  # runs pausing the collector now; whether it was enabled before the first


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a bulk step runs (the collector is per process).

    A sync push, a GeoJSON import or a grading run allocates up to millions of short-lived rows and
    tuples and makes no reference cycles; every few hundred allocations the collector would walk
    the young objects, and every so often the whole heap: up to a third of the CPU time. Nested
    and concurrent pauses (threads) hold one pause: the collector comes back, if it was on, when
    the last one ends, and whatever other threads made meanwhile is collected then.
    """
    with _GC_LOCK:
        if _GC_HOLDS[0] == 0:
            _GC_HOLDS[1] = gc.isenabled()
            gc.disable()
        _GC_HOLDS[0] += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _GC_HOLDS[0] -= 1
            if _GC_HOLDS[0] == 0 and _GC_HOLDS[1]:
                gc.enable()
