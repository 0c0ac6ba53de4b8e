"""Village and farm-park outlines kept for the ``areas`` tile layer (derived data, rebuilt when stale).

A village has no geometry of its own: its outline is the convex hull of its parcels. Farm parks
draw their own geometry when they have one. ``source_seq`` is the change sequence the row was
built at; the tile service rebuilds what changed since (``services.refresh_outlines``).

The spatial index of parcels is not a model column: PostgreSQL keeps ``parcels.geom`` (PostGIS,
EPSG:3857, GiST) and SQLite the ``parcels_rtree`` R*Tree, both kept by triggers of the
migration ``map tiles``, so every write path keeps them current; the one exception is a new
parcel's R*Tree entry, which ``places.services._insert_parcels`` (the only place parcels are
inserted) adds in one statement after the rows (migration ``b2d9e4f17a35``). ``SPATIAL_OBJECTS``
names them for schema comparison (``include_object``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Float, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db


class AreaOutline(db.Model):
    __tablename__ = "area_outlines"
    __table_args__ = (UniqueConstraint("kind", "code"),
                      Index("ix_area_outlines_county_bbox", "county_code", "min_lon", "max_lon"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # village | farm_park
    code: Mapped[str] = mapped_column(String(32))
    county_code: Mapped[str] = mapped_column(String(12))
    geometry_json: Mapped[str] = mapped_column(Text)
    min_lon: Mapped[float] = mapped_column(Float)
    min_lat: Mapped[float] = mapped_column(Float)
    max_lon: Mapped[float] = mapped_column(Float)
    max_lat: Mapped[float] = mapped_column(Float)
    source_seq: Mapped[int] = mapped_column(BigInteger)


class CachedTile(db.Model):
    """A rendered tile, by layer/z/x/y and the caller's scope, valid while ``version`` is the data version
    (``cache.py``): a low-zoom tile of a 1 M-parcel county costs ~100 ms to build and nothing to read back."""

    __tablename__ = "tile_cache"

    layer: Mapped[str] = mapped_column(String(16), primary_key=True)
    z: Mapped[int] = mapped_column(Integer, primary_key=True)
    x: Mapped[int] = mapped_column(Integer, primary_key=True)
    y: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[str] = mapped_column(String(40))
    data: Mapped[bytes] = mapped_column(LargeBinary)


# Made by the migration on one engine only (PostGIS's own table, the R*Tree and its shadow tables,
# the geometry column and its index): left out when models and database are compared.
SPATIAL_TABLES = frozenset({"spatial_ref_sys", "parcels_rtree", "parcels_rtree_node", "parcels_rtree_parent",
                            "parcels_rtree_rowid"})
SPATIAL_COLUMNS = frozenset({("parcels", "geom")})
SPATIAL_INDEXES = frozenset({"ix_parcels_geom", "ix_parcels_tile_size"})


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic's ``include_object``: skip the engine-specific spatial objects."""
    if type_ == "table" and name in SPATIAL_TABLES:
        return False
    if type_ == "column" and (getattr(obj.table, "name", None), name) in SPATIAL_COLUMNS:
        return False
    if type_ == "index" and name in SPATIAL_INDEXES:
        return False
    return True
