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

from collections.abc import Callable, Hashable
from typing import TypeVar

from flask import current_app

from ..lru import LRU
from ..tiles.cache import data_version

T = TypeVar("T")
SIZE = 64  # entries: a county's overview keeps two (its villages' tallies, its coverage), its parks one


def _memo() -> LRU:
    return current_app.extensions.setdefault("county_memo", LRU(SIZE))


def remembered(key: Hashable, compute: Callable[[], T]) -> T:
    """``compute()``, or what it gave under the current data version for the same ``key``."""
    memo, version = _memo(), data_version()
    hit = memo.get(key)
    if hit is not None and hit[0] == version:
        return hit[1]
    value = compute()
    memo.put(key, (version, value))
    return value


def clear() -> None:
    """Forget every entry (a database restored under a running application)."""
    _memo().clear()
