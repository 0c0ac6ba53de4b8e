"""A cache of rendered tiles, keyed by layer/z/x/y and the caller's scope, with a data version.

Why: a county-wide tile (z10-z13) draws from up to a million parcels; building it costs tens to
hundreds of milliseconds, reading it back one indexed row. Real tile servers keep such tiles; this one
keeps them in the database (both engines, no extra service), so every process shares them.

The data version is the ``tiles`` counter of ``sequence_counters`` (advanced by ``invalidate`` from the
event chain in ``fieldsvc/handlers.py`` whenever parcels, samples or grades change) together with the
newest change number of regions (a renamed village changes the tile's ``village_name``) and the newest
grade row (a county run grades without publishing an event for a first grade). A cached tile
is used only while its version is the current one, so a tile rendered by a request that read the data
before a concurrent write committed is never served after it. A stale row is never served and is
replaced in place by the next render of its key, so the rows stay bounded by the keys (z10–z13 × scopes)
and ``invalidate`` only advances the counter: it runs on every sync push, and a DELETE of the whole
cache there was work on the hot path that the version check already made unnecessary.

The scope is a digest of the SQL of the caller's parcel scope (``access.parcel_filter``): two officials
of one county share tiles, another county never does. Samplers (and devices) see parcels through an
assignment that changes without a tile event: their tiles are not cached (they are small).
"""

from __future__ import annotations

import hashlib

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from .. import access, sequence
from ..auth.principal import Actor
from ..extensions import db
from ..grading.models import Grade
from ..places.models import Region
from ..places.services import parcel_scope
from .models import CachedTile
from .tilemath import Tile

COUNTER = "tiles"


def scope_key(actor: Actor, max_bytes: int) -> str | None:
    """The cache's scope for this caller (None: not cached), from the SQL of what the caller may see."""
    if access.assignment_bound(actor):
        return None
    sql = " AND ".join(str(c.compile(compile_kwargs={"literal_binds": True})) for c in parcel_scope(actor))
    return hashlib.sha256(f"{sql}|{max_bytes}".encode()).hexdigest()[:40]


def data_version() -> str:
    regions = db.session.scalar(select(func.max(Region.seq))) or 0
    grades = db.session.scalar(select(func.max(Grade.id))) or 0  # (grades are rows added, never rewritten)
    return f"{sequence.current(COUNTER)}.{regions}.{grades}"


def get(layer: str, tile: Tile, scope: str, version: str) -> bytes | None:
    row = db.session.execute(select(CachedTile.version, CachedTile.data).where(
        CachedTile.layer == layer, CachedTile.z == tile.z, CachedTile.x == tile.x, CachedTile.y == tile.y,
        CachedTile.scope == scope)).first()
    return bytes(row.data) if row is not None and row.version == version else None


def put(layer: str, tile: Tile, scope: str, version: str, data: bytes) -> None:
    """Keep a rendered tile. A collision with another request's write, or a locked SQLite file, is not
    an error: the tile is served anyway and cached next time."""
    key = {"layer": layer, "z": tile.z, "x": tile.x, "y": tile.y, "scope": scope}
    try:
        with db.session.begin_nested():
            db.session.execute(CachedTile.__table__.delete().filter_by(**key))
            db.session.execute(CachedTile.__table__.insert().values(**key, version=version, data=data))
    except (IntegrityError, OperationalError):
        pass


def invalidate() -> None:
    """The data behind the tiles changed (a handler of the event chain): a new version; the stored tiles
    of the old one are no longer served (``get``) and are replaced as they are rendered again (``put``)."""
    sequence.allocate(1, COUNTER)
