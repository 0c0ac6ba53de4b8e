"""The console header's search: one box for a parcel, bag, certificate, village, farm park or device
code (or a village's or park's name) → what matches, within what the account may see (no Flask).

Exact codes first (a typed or scanned certificate code is read the forgiving way, dashes and all),
then prefixes of codes and parts of names; each kind is scoped by the domain's helper over
``fieldsvc.access``. One hit lets the page jump straight to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, or_, select

from .. import access
from ..auth.principal import Actor
from ..certificates.codes import normalise_code
from ..certificates.models import Certificate
from ..devices.models import Device
from ..devices.services import device_scope
from ..extensions import db
from ..places.models import FarmPark, Parcel, Region
from ..places.services import parcel_scope
from ..samples.models import Sample
from ..samples.services import sample_scope
from .listing import like

PER_KIND = 20
MAX_QUERY = 64


@dataclass(frozen=True)
class Hit:
    kind: str  # parcel | sample | certificate | village | farm_park | device
    code: str  # what the page's URL takes
    label: str  # what the result shows beside the code (a name, a parcel, a status)
    exact: bool


def _prefix(column: object, text: str) -> object:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return func.upper(column).like(escaped.upper() + "%", escape="\\")


def search(query: str, actor: Actor) -> list[Hit]:
    """Everything the account may see that the text names, exact matches first."""
    q = query.strip()[:MAX_QUERY]
    if not q:
        return []
    hits: list[Hit] = []
    for row in db.session.execute(select(Parcel.code, Parcel.village_code).where(
            _prefix(Parcel.code, q), Parcel.deleted_at.is_(None), *parcel_scope(actor))
            .order_by(Parcel.code).limit(PER_KIND)):
        hits.append(Hit("parcel", row.code, row.village_code, row.code.upper() == q.upper()))
    for row in db.session.execute(select(Sample.id, Sample.code, Sample.parcel_code).where(
            _prefix(Sample.code, q), Sample.deleted_at.is_(None), *sample_scope(actor))
            .order_by(Sample.code).limit(PER_KIND)):
        hits.append(Hit("sample", row.parcel_code, row.code, row.code.upper() == q.upper()))
    code = normalise_code(q)
    cert_where = Certificate.code == code if code else _prefix(Certificate.code, q.replace("-", ""))
    for row in db.session.execute(select(Certificate.code, Certificate.subject_code, Certificate.status).where(
            cert_where, access.record_filter(actor, Certificate.county_code))
            .order_by(Certificate.id.desc()).limit(PER_KIND)):
        hits.append(Hit("certificate", row.code, row.subject_code, row.code == code))
    for kind, model, scope in (("village", Region, access.region_filter(actor, Region.code, Region.county_code)),
                               ("farm_park", FarmPark, access.farm_park_filter(actor, FarmPark.code,
                                                                               FarmPark.county_code))):
        where = [or_(_prefix(model.code, q), like(model.name, q), like(model.name_en, q)), *scope]
        if model is Region:
            where.append(Region.level == "village")
        for row in db.session.execute(select(model.code, model.name).where(*where).order_by(model.code)
                                      .limit(PER_KIND)):
            hits.append(Hit(kind, row.code, row.name, q in (row.code, row.name)))
    for row in db.session.execute(select(Device.device_id, Device.name).where(
            or_(_prefix(Device.device_id, q), like(Device.name, q)), *device_scope(actor))
            .order_by(Device.device_id).limit(PER_KIND)):
        hits.append(Hit("device", row.device_id, row.name, row.device_id.upper() == q.upper()))
    exact = [h for h in hits if h.exact]
    return exact + [h for h in hits if not h.exact]
