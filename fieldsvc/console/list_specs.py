"""The console's lists as ``ListSpec``s: what each selects, its scope, filters and sorts (no Flask).

Scopes are the domains' own helpers over ``fieldsvc.access`` (the one place access is decided):
samples ``sample_scope``, parcels ``parcel_scope``, villages ``access.region_filter``, farm parks
``access.farm_park_filter``, certificates ``access.record_filter``, conflicts ``conflict_filter``,
devices ``device_scope``, lab imports ``import_scope``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from .. import access
from ..certificates.models import Certificate
from ..devices.models import Device
from ..devices.services import device_scope
from ..lab.models import LabImport
from ..lab.services import import_scope
from ..places.models import LAND_USES, FarmPark, Parcel, Region
from ..places.services import parcel_scope
from ..samples.conflicts import conflict_filter
from ..samples.models import Sample, SyncConflict
from ..samples.services import sample_scope
from .listing import Column, Filter, ListSpec, like

SAMPLE_STATES = ("awaiting_media", "complete", "held", "needs_review")
CERT_STATUSES = ("valid", "revoked", "superseded")
SUBJECT_TYPES = ("parcel", "village", "farm_park")
CONFLICT_STATES = ("open", "resolved")


def _dict(row: Any) -> dict[str, Any]:
    return dict(row._mapping)


SAMPLES = ListSpec(
    kind="samples", title="list_samples",
    base=lambda: select(Sample.id, Sample.code, Sample.parcel_code, Sample.state, Sample.flags, Sample.collected_at,
                        Sample.received_at, Sample.accuracy_m, Sample.created_by)
    .where(Sample.deleted_at.is_(None)),
    id_col=Sample.id, scope=sample_scope, row=_dict,
    columns=(Column("code", "bag_code", "code"), Column("parcel_code", "parcel", "code", ("console.parcel", "code")),
             Column("state", "state", "badge:ch_state_"), Column("collected_at", "collected_at", "time"),
             Column("received_at", "received_at_col", "time"), Column("accuracy_m", "accuracy", "number")),
    sorts={"received_at": Sample.received_at, "code": Sample.code, "parcel": Sample.parcel_code},
    default_sort="-received_at",
    filters=(Filter("q", lambda v: like(Sample.code, v)), Filter("state", lambda v: Sample.state == v, SAMPLE_STATES),
             Filter("parcel", lambda v: Sample.parcel_code == v),
             Filter("village", lambda v: Sample.parcel_code.in_(select(Parcel.code).where(Parcel.village_code == v)))),
    export="samples", export_filters={"state": "state", "parcel": "parcel", "village": "village"},
)

PARCELS = ListSpec(
    kind="parcels", title="list_parcels",
    base=lambda: select(Parcel.id, Parcel.code, Parcel.village_code, Parcel.farm_park_code, Parcel.land_use,
                        Parcel.crop, Parcel.area_m2).where(Parcel.deleted_at.is_(None)),
    id_col=Parcel.id, scope=parcel_scope, row=_dict,
    columns=(Column("code", "parcel", "code", ("console.parcel", "code")),
             Column("village_code", "village", "code", ("console.village", "code")),
             Column("farm_park_code", "farm_park", "code", ("console.farm_park", "code")),
             Column("land_use", "land_use", "word:lu_"),
             Column("crop", "crop"), Column("area_m2", "area_mu", "area")),
    sorts={"code": Parcel.code, "area": Parcel.area_m2},
    default_sort="code",
    filters=(Filter("q", lambda v: like(Parcel.code, v)), Filter("village", lambda v: Parcel.village_code == v),
             Filter("farm_park", lambda v: Parcel.farm_park_code == v),
             Filter("land_use", lambda v: Parcel.land_use == v, LAND_USES)),
    export="grades", export_filters={"village": "village", "farm_park": "farm_park"},
)

VILLAGES = ListSpec(
    kind="villages", title="list_villages",
    base=lambda: select(Region.id, Region.code, Region.name, Region.name_en, Region.parent_code)
    .where(Region.level == "village"),
    id_col=Region.id, scope=lambda actor: access.region_filter(actor, Region.code, Region.county_code), row=_dict,
    columns=(Column("code", "code", "code", ("console.village", "code")), Column("name", "name"),
             Column("name_en", "name_en")),
    sorts={"code": Region.code, "name": Region.name}, default_sort="code",
    filters=(Filter("q", lambda v: like(Region.name, v) | like(Region.code, v) | like(Region.name_en, v)),),
)

FARM_PARKS = ListSpec(
    kind="farm_parks", title="list_farm_parks",
    base=lambda: select(FarmPark.id, FarmPark.code, FarmPark.name, FarmPark.name_en, FarmPark.area_m2),
    id_col=FarmPark.id, scope=lambda actor: access.farm_park_filter(actor, FarmPark.code, FarmPark.county_code),
    row=_dict,
    columns=(Column("code", "code", "code", ("console.farm_park", "code")), Column("name", "name"),
             Column("name_en", "name_en"), Column("area_m2", "area_mu", "area")),
    sorts={"code": FarmPark.code, "name": FarmPark.name}, default_sort="code",
    filters=(Filter("q", lambda v: like(FarmPark.name, v) | like(FarmPark.code, v) | like(FarmPark.name_en, v)),),
)

CERTIFICATES = ListSpec(
    kind="certificates", title="list_certificates",
    base=lambda: select(Certificate.id, Certificate.code, Certificate.subject_type, Certificate.subject_code,
                        Certificate.status, Certificate.issued_at, Certificate.valid_until)
    .where(Certificate.kind == "certificate"),
    id_col=Certificate.id, scope=lambda actor: [access.record_filter(actor, Certificate.county_code)], row=_dict,
    columns=(Column("code", "certificate", "code", ("console.certificate", "code")),
             Column("subject_type", "subject_type", "word:kind_"), Column("subject_code", "subject", "code"),
             Column("status", "status", "badge:st_"), Column("issued_at", "issued_at", "time"),
             Column("valid_until", "valid_until", "time")),
    sorts={"issued_at": Certificate.issued_at, "code": Certificate.code, "valid_until": Certificate.valid_until},
    default_sort="-issued_at",
    filters=(Filter("q", lambda v: like(Certificate.code, v) | like(Certificate.subject_code, v)),
             Filter("status", lambda v: Certificate.status == v, CERT_STATUSES),
             Filter("subject_type", lambda v: Certificate.subject_type == v, SUBJECT_TYPES)),
    export="certificates", export_filters={"status": "status", "subject_type": "subject_type"},
)

CONFLICTS = ListSpec(
    kind="conflicts", title="list_conflicts",
    base=lambda: select(SyncConflict.id, SyncConflict.code, SyncConflict.kind, SyncConflict.status,
                        SyncConflict.created_at),
    id_col=SyncConflict.id, scope=lambda actor: conflict_filter({}, actor), row=_dict,
    columns=(Column("id", "conflict", "code", ("console.conflict_page", "conflict_id")),
             Column("code", "bag_code", "code"),
             Column("kind", "kind", "word:cw_"), Column("status", "status", "badge:cs_"),
             Column("created_at", "created", "time")),
    sorts={"created_at": SyncConflict.created_at, "code": SyncConflict.code}, default_sort="-created_at",
    filters=(Filter("q", lambda v: like(SyncConflict.code, v)),
             Filter("status", lambda v: SyncConflict.status == v, CONFLICT_STATES)),
)

DEVICES = ListSpec(
    kind="devices", title="list_devices",
    base=lambda: select(Device.id, Device.device_id, Device.name, Device.created_at, Device.last_seen_at,
                        Device.revoked_at),
    id_col=Device.id, scope=device_scope, row=_dict,
    columns=(Column("device_id", "device", "code", ("console.device", "device_id")), Column("name", "name"),
             Column("created_at", "created", "time"), Column("last_seen_at", "last_seen", "time"),
             Column("revoked_at", "revoked_at", "time")),
    sorts={"created_at": Device.created_at, "name": Device.name}, default_sort="-created_at",
    filters=(Filter("q", lambda v: like(Device.device_id, v) | like(Device.name, v)),
             Filter("active", lambda v: Device.revoked_at.is_(None) if v == "yes" else Device.revoked_at.is_not(None),
                    ("yes", "no"))),
)

LAB_IMPORTS = ListSpec(
    kind="lab_imports", title="list_lab_imports",
    base=lambda: select(LabImport.id, LabImport.filename, LabImport.lab, LabImport.created_at, LabImport.rows,
                        LabImport.accepted, LabImport.held),
    id_col=LabImport.id, scope=import_scope, row=_dict,
    columns=(Column("id", "import", "code", ("console.lab_import", "import_id")), Column("filename", "file"),
             Column("lab", "lab"), Column("created_at", "created", "time"), Column("rows", "rows", "number"),
             Column("accepted", "accepted", "number"), Column("held", "held", "number")),
    sorts={"created_at": LabImport.created_at, "filename": LabImport.filename}, default_sort="-created_at",
    filters=(Filter("q", lambda v: like(LabImport.filename, v) | like(LabImport.lab, v)),),
    export="results", export_filters={},
)

SPECS: dict[str, ListSpec] = {s.kind: s for s in (SAMPLES, PARCELS, VILLAGES, FARM_PARKS, CERTIFICATES, CONFLICTS,
                                                   DEVICES, LAB_IMPORTS)}
