"""The form attachment listing a device's parcels (``parcels.csv``) for the select-from-file question.

Collect reads the CSV's ``name`` (the parcel code, the value stored) and ``label`` columns, and
with the ``map`` appearance places each choice at its ``geometry`` (an ODK geopoint, ``lat lon 0
0``, the parcel's area centroid). The rows are the device's assignment: the parcels assigned to
it and every parcel in its assigned villages. A sampler signed in with a password (no device) gets
the union over their active devices. The file's MD5 is the manifest hash, so it changes exactly
when the listed parcels do, and Collect fetches the new file.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass

from sqlalchemy import or_, select

from .. import csvout
from ..auth.principal import Actor
from ..devices.models import Device, DeviceAssignment
from ..extensions import db
from ..places.geometry import centroid
from ..places.models import Parcel, Region

FILENAME = "parcels.csv"
COLUMNS = ("name", "label", "village", "geometry")


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes

    @property
    def md5(self) -> str:
        return "md5:" + hashlib.md5(self.content, usedforsecurity=False).hexdigest()


def _device_pks(actor: Actor) -> list[int]:
    if actor.device_pk is not None:
        return [actor.device_pk]
    return list(db.session.scalars(select(Device.id).where(Device.user_id == actor.user_id,
                                                           Device.revoked_at.is_(None))))


def parcel_csv(actor: Actor) -> Attachment:
    """``parcels.csv`` for ``actor`` (a device, or a sampler's devices), ordered by code."""
    pks = _device_pks(actor)
    rows = db.session.execute(select(DeviceAssignment.kind, DeviceAssignment.code).where(
        DeviceAssignment.device_pk.in_(pks), DeviceAssignment.active.is_(True))).all() if pks else []
    villages = sorted({code for kind, code in rows if kind == "village"})
    codes = sorted({code for kind, code in rows if kind == "parcel"})
    out = io.StringIO()
    writer = csvout.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    if villages or codes:
        parcels = db.session.execute(
            select(Parcel.code, Parcel.village_code, Parcel.geometry_json)
            .where(or_(Parcel.village_code.in_(villages), Parcel.code.in_(codes)), Parcel.deleted_at.is_(None))
            .order_by(Parcel.code)).all()
        names = dict(db.session.execute(select(Region.code, Region.name).where(
            Region.code.in_({village for _, village, _ in parcels}))).all())
        for code, village, geometry in parcels:
            lon, lat = centroid(json.loads(geometry))
            village_name = names.get(village) or village
            writer.writerow((code, f"{code} · {village_name}", village_name, f"{lat:.7f} {lon:.7f} 0 0"))
    return Attachment(FILENAME, out.getvalue().encode("utf-8"))
