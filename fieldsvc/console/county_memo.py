"""A county's area grades and coverage counts, kept in this process while its data stands.

Why: the overview and the certificate candidates list every village and farm park of a county with
its grade. Where the county has maintained roll-up sums that is one indexed read; where it has none
(grades written by village runs only, or loaded in bulk) each read rolls up every parcel of the
county in the database: about 0.2 s of joins at 100,000 parcels on SQLite, on every page view of
every official. The result depends on parcels, samples, grades and region names only, which is what
the tile cache's data version (``tiles.cache.data_version``: a counter the event chain advances on
any of those changes, the newest region change and the newest grade row) tracks. An entry is used
only while the version it was computed under is the current one, so a page never shows numbers from
before a committed change; the first view after a change computes them again. The cache is small
(least recently used out) and belongs to the application object (``app.extensions``): each gunicorn
worker keeps its own, and an application made over another database (a test's) starts empty.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from threading import Lock
from typing import TypeVar

from flask import current_app

from ..tiles.cache import data_version

T = TypeVar("T")
SIZE = 64  # entries: (county, what) pairs; a county's overview keeps three



class _Memo:
    def __init__(self) -> None:
        self.entries: OrderedDict[Hashable, tuple[str, object]] = OrderedDict()
        self.lock = Lock()


def _memo() -> _Memo:
    return current_app.extensions.setdefault("county_memo", _Memo())


def remembered(key: Hashable, compute: Callable[[], T]) -> T:
    """``compute()``, or what it gave under the current data version for the same ``key``."""
    memo, version = _memo(), data_version()
    with memo.lock:
        hit = memo.entries.get(key)
        if hit is not None and hit[0] == version:
            memo.entries.move_to_end(key)
            return hit[1]  # type: ignore[return-value]
    value = compute()
    with memo.lock:
        memo.entries[key] = (version, value)
        memo.entries.move_to_end(key)
        while len(memo.entries) > SIZE:
            memo.entries.popitem(last=False)
    return value


def clear() -> None:
    """Forget every entry (a database restored under a running application)."""
    memo = _memo()
    with memo.lock:
        memo.entries.clear()
