"""Places. Every row carries its county (for scoping and roll-up) and a change ``seq`` (for sync pull)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..dbtypes import UTCDateTime, utcnow
from ..extensions import db

LEVELS = ("county", "township", "village")
LAND_USES = ("dryland", "paddy", "vegetable", "orchard", "tea", "grassland", "paddy_dryland_rotation")


class Region(db.Model):
    __tablename__ = "regions"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    name_en: Mapped[str | None] = mapped_column(String(120))
    level: Mapped[str] = mapped_column(String(16), index=True)
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("regions.code"), index=True)
    county_code: Mapped[str] = mapped_column(String(12), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    seq: Mapped[int] = mapped_column(BigInteger, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FarmPark(db.Model):
    __tablename__ = "farm_parks"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    name_en: Mapped[str | None] = mapped_column(String(120))
    county_code: Mapped[str] = mapped_column(ForeignKey("regions.code"), index=True)
    geometry_json: Mapped[str | None] = mapped_column(Text)
    area_m2: Mapped[float | None] = mapped_column(Float)
    version: Mapped[int] = mapped_column(Integer, default=1)
    seq: Mapped[int] = mapped_column(BigInteger, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Parcel(db.Model):
    __tablename__ = "parcels"
    # Each area's index carries ``deleted_at``, ``area_m2`` and ``code``: counting an area's live parcels and summing
    # their area (the console's overview and certificate candidates, live roll-ups) reads the index
    # alone, not 100,000 table rows (``code``: the join to current grades); their prefixes still serve
    # the foreign keys and lookups.
    __table_args__ = (Index("ix_parcels_county_village_live", "county_code", "village_code", "deleted_at"),
                      Index("ix_parcels_village_live", "village_code", "deleted_at", "area_m2", "code"),
                      Index("ix_parcels_farm_park_live", "farm_park_code", "deleted_at", "area_m2", "code"))

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    village_code: Mapped[str] = mapped_column(ForeignKey("regions.code"))
    county_code: Mapped[str] = mapped_column(String(12))
    farm_park_code: Mapped[str | None] = mapped_column(ForeignKey("farm_parks.code"))
    land_use: Mapped[str] = mapped_column(String(32), index=True)
    crop: Mapped[str | None] = mapped_column(String(64))
    area_m2: Mapped[float] = mapped_column(Float)
    area_computed: Mapped[bool] = mapped_column(default=False)
    geometry_json: Mapped[str] = mapped_column(Text)
    min_lon: Mapped[float] = mapped_column(Float)
    min_lat: Mapped[float] = mapped_column(Float)
    max_lon: Mapped[float] = mapped_column(Float)
    max_lat: Mapped[float] = mapped_column(Float)
    version: Mapped[int] = mapped_column(Integer, default=1)
    seq: Mapped[int] = mapped_column(BigInteger, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ParcelImport(db.Model):
    """One committed GeoJSON import, by the SHA-256 of its body: the same file sent again (its
    answer lost on the way) gets the first commit's answer instead of 422 "duplicate code"."""

    __tablename__ = "parcel_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    county_code: Mapped[str | None] = mapped_column(String(12))  # the parcels' county; None: several
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answer_json: Mapped[str] = mapped_column(Text)
