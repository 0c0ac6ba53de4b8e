"""Sampling plans: "where to sample next" sent to a device as planned points (DESIGN §4.6).

``push_plan`` turns an official's ranked parcel list into planned points for one device, each with
a suggested point inside its parcel (``sampling.suggested_point``, the one ``sampling/next``
shows), the reason a sample there matters (the parcel's current verdict) and the distance to the
nearest sample. Rules:

- Only parcels and devices the official may see (``access``); another county's are absent (404 for
  the device, "unknown parcel" for a parcel). A parcel outside the device's assignment is refused by
  name unless the caller asks to ``assign`` it (then the assignment grows, audited, as a PATCH would).
- A retry is a no-op: the same ordered list as the device's active plan answers that plan (200).
- Another list replaces the plan: a new plan row, the old one kept as ``replaced`` and its open points
  ``withdrawn`` (they come down the pull as deletes); the audit trail of the device records both.
- ``close_for_samples`` (run by the event chain on ``SamplesCreated``/``SamplesChanged``) closes the
  open points of the parcels a new sample landed on, from any entry path (sync push, OpenRosa, a sample
  moved or linked in the console). Samples already on the parcel when it was planned do not close it.

Flush, never commit: the request commits.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable, Sequence

import numpy as np
from sqlalchemy import func, select

from .. import access
from ..audit.services import Change, record, record_many
from ..auth.principal import Actor
from ..dbtypes import isoformat, utcnow
from ..dbutil import core_execute
from ..devices import services as devices
from ..devices.models import Device, DeviceAssignment
from ..errors import Problem, validation_failed
from ..extensions import db
from ..places.models import Parcel
from ..samples.models import Sample
from ..sequence import allocate
from .models import Grade
from .plan_models import PlannedPoint, SamplingPlan
from .rules import DEFAULT_PACK
from .sampling import suggested_point, worst_sigma

MAX_PARCELS = 500  # one plan; a sampler works through tens of parcels a week
UNSETTLED = {"needs_sampling": "needs_sampling", "not_assessed": "not_assessed", "not_graded": "not_assessed"}
_EARTH_M = 6371008.8


def push_plan(device: Device, codes: Sequence[str], actor: Actor, *, assign: bool = False
              ) -> tuple[SamplingPlan, bool]:
    """Make ``codes`` (ranked, best first) the device's plan. Returns ``(plan, created)``; ``created`` is
    False when the same list is already the device's active plan (a retry). Load ``device`` with
    ``for_update`` so two sends to one device apply one after the other.

    :raise 409 device_revoked: the device is revoked.
    :raise 422: ``parcels`` names what is wrong (duplicates, unknown, another county, not assigned).
    """
    if device.revoked_at is not None:
        raise Problem(409, "device_revoked", f"Device {device.device_id} is revoked.")
    codes = list(codes)
    parcels = _check_parcels(device, codes, actor)
    unassigned = _unassigned(device, parcels)
    if unassigned and not assign:
        raise validation_failed({"parcels": [
            f"parcel {c} is not assigned to device {device.device_id}; send \"assign\": true to add it"
            for c in unassigned[:20]]})
    digest = hashlib.sha256(json.dumps(codes).encode()).hexdigest()
    active = _active_plan(device)
    if active is not None and active.digest == digest:
        return active, False
    if unassigned:
        devices.change_assignment(device, {"parcels": devices.assigned_codes(device, "parcel") + unassigned}, actor)
    now = utcnow()
    withdrawn = list(db.session.scalars(select(PlannedPoint).where(
        PlannedPoint.device_pk == device.id, PlannedPoint.status == "open").order_by(PlannedPoint.id)))
    seqs = iter(allocate(len(withdrawn) + len(codes)))
    before = plan_summary(active) if active is not None else None
    for p in withdrawn:  # first in seq order, so a phone drops the old points before it gets the new
        p.status, p.seq, p.version, p.updated_at = "withdrawn", next(seqs), p.version + 1, now
    if active is not None:
        active.status, active.replaced_at = "replaced", now
    number = (db.session.scalar(select(func.max(SamplingPlan.number)).where(
        SamplingPlan.device_pk == device.id)) or 0) + 1
    plan = SamplingPlan(device_pk=device.id, number=number, county_code=device.county_code, parcels=codes,
                        digest=digest, status="active", created_by=actor.label, created_at=now)
    db.session.add(plan)
    db.session.flush()
    for rank, code, facts in zip(range(1, len(codes) + 1), codes, _facts(parcels, codes), strict=True):
        p = parcels[code]
        db.session.add(PlannedPoint(plan_id=plan.id, device_pk=device.id, key=f"{number}:{code}", parcel_code=code,
                                    village_code=p.village_code, county_code=p.county_code, rank=rank,
                                    status="open", version=1, seq=next(seqs), created_at=now, updated_at=now,
                                    **facts))
    db.session.flush()
    record(actor.label, Change("device", device.device_id, "plan", before=before, after=plan_summary(plan)),
           {"withdrawn": len(withdrawn)})
    return plan, True


def _check_parcels(device: Device, codes: list[str], actor: Actor) -> dict[str, Parcel]:
    errors: list[str] = []
    if len(codes) > MAX_PARCELS:
        raise validation_failed({"parcels": [f"at most {MAX_PARCELS} parcels in one plan, not {len(codes)}"]})
    seen: set[str] = set()
    for code in codes:
        if code in seen:
            errors.append(f"parcel {code} is listed twice")
        seen.add(code)
    found = {p.code: p for p in db.session.scalars(select(Parcel).where(
        Parcel.code.in_(seen), Parcel.deleted_at.is_(None))) if access.may_see_county(actor, p.county_code)}
    errors += [f"unknown parcel {c}" for c in codes if c not in found][:20]
    if device.county_code is not None:
        errors += [f"parcel {c} is not in device {device.device_id}'s county"
                   for c, p in found.items() if p.county_code != device.county_code][:20]
    if errors:
        raise validation_failed({"parcels": errors})
    return found


def _unassigned(device: Device, parcels: dict[str, Parcel]) -> list[str]:
    assigned = db.session.execute(select(DeviceAssignment.kind, DeviceAssignment.code).where(
        DeviceAssignment.device_pk == device.id, DeviceAssignment.active.is_(True))).all()
    villages = {c for k, c in assigned if k == "village"}
    codes = {c for k, c in assigned if k == "parcel"}
    return [c for c, p in parcels.items() if c not in codes and p.village_code not in villages]


def _active_plan(device: Device) -> SamplingPlan | None:
    return db.session.scalar(select(SamplingPlan).where(SamplingPlan.device_pk == device.id,
                                                        SamplingPlan.status == "active"))


def _facts(parcels: dict[str, Parcel], codes: list[str]) -> Iterable[dict[str, Any]]:
    """Per parcel, in order: the suggested point, why (its verdict now), σ, the nearest sample, the
    samples already on it."""
    grades = dict(db.session.execute(select(Grade.subject_code, Grade).where(
        Grade.subject_type == "parcel", Grade.rule_pack == DEFAULT_PACK, Grade.superseded_by.is_(None),
        Grade.subject_code.in_(codes))).all())
    prior: dict[str, list[str]] = {}
    for sid, code in db.session.execute(select(Sample.id, Sample.parcel_code).where(
            Sample.parcel_code.in_(codes), Sample.deleted_at.is_(None))):
        prior.setdefault(code, []).append(sid)
    points = [suggested_point(parcels[c].geometry_json) for c in codes]
    nearest = _nearest_sample_m(points, {p.county_code for p in parcels.values()})
    for code, point, near in zip(codes, points, nearest, strict=True):
        g = grades.get(code)
        reason = UNSETTLED.get(g.verdict, "requested") if g is not None else "not_assessed"
        sigma = worst_sigma(g.explanation)[1] if g is not None and reason == "needs_sampling" else None
        yield {"lat": point["lat"], "lon": point["lon"], "reason": reason, "sigma": sigma,
               "nearest_sample_m": near, "prior_samples": sorted(prior.get(code, []))}


def _nearest_sample_m(points: list[dict[str, float]], counties: set[str | None]) -> list[float | None]:
    """Great-circle distance from each point to the nearest live sample of its counties (metres, whole)."""
    # A sample without a GPS fix counts at its parcel's centre (as the estimation places it).
    lat = func.coalesce(Sample.lat, (Parcel.min_lat + Parcel.max_lat) / 2)
    lon = func.coalesce(Sample.lon, (Parcel.min_lon + Parcel.max_lon) / 2)
    rows = [r for r in db.session.execute(select(lat, lon).outerjoin(Parcel, Parcel.code == Sample.parcel_code).where(
        Sample.county_code.in_([c for c in counties if c]), Sample.deleted_at.is_(None))).all()
        if r[0] is not None and r[1] is not None]
    if not rows or not points:
        return [None] * len(points)
    s = np.radians(np.array(rows, dtype=float))
    out: list[float | None] = []
    for pt in points:
        lat, lon = np.radians(pt["lat"]), np.radians(pt["lon"])
        a = np.sin((s[:, 0] - lat) / 2) ** 2 + np.cos(lat) * np.cos(s[:, 0]) * np.sin((s[:, 1] - lon) / 2) ** 2
        out.append(float(round(2 * _EARTH_M * np.arcsin(np.sqrt(a.min())))))
    return out


# --- closing ----------------------------------------------------------------------------------------

def close_for_samples(sample_ids: Iterable[str], actor: Actor) -> int:
    """Close the open planned points of the parcels these (live) samples are on. Returns how many."""
    ids = list(sample_ids)
    if not ids or core_execute(_ANY_OPEN).first() is None:
        return 0  # no point is open anywhere (the usual push): one probe of ix_planned_points_status_parcel
    # the open points on these samples' parcels first, in one statement: a push of 500 new samples
    # onto parcels without a plan (the usual case) reads no sample row back
    live = select(Sample.parcel_code).where(Sample.id.in_(ids), Sample.deleted_at.is_(None))
    points = list(db.session.scalars(select(PlannedPoint).where(
        PlannedPoint.parcel_code.in_(live), PlannedPoint.status == "open").order_by(PlannedPoint.id)))
    if not points:
        return 0
    on: dict[str, list[str]] = {}
    for sid, code in db.session.execute(select(Sample.id, Sample.parcel_code).where(
            Sample.id.in_(ids), Sample.deleted_at.is_(None),
            Sample.parcel_code.in_({p.parcel_code for p in points})).order_by(Sample.id)):
        on.setdefault(code, []).append(sid)
    closing = [(p, next(s for s in on[p.parcel_code] if s not in (p.prior_samples or [])))
               for p in points if any(s not in (p.prior_samples or []) for s in on[p.parcel_code])]
    if not closing:
        return 0
    now = utcnow()
    seqs = iter(allocate(len(closing)))
    for p, sid in closing:
        p.status, p.closed_by_sample, p.closed_at = "closed", sid, now
        p.seq, p.version, p.updated_at = next(seqs), p.version + 1, now
    db.session.flush()
    record_many(actor.label, [Change("planned_point", p.key, "close", after={"parcel": p.parcel_code, "sample": sid})
                              for p, sid in closing])
    return len(closing)


_ANY_OPEN = select(PlannedPoint.id).where(PlannedPoint.status == "open").limit(1)


# --- reading ----------------------------------------------------------------------------------------

def point_data(p: PlannedPoint) -> dict[str, Any]:
    """A planned point as the device's pull and the API show it."""
    return {"plan": int(p.key.split(":", 1)[0]), "parcel": p.parcel_code, "village": p.village_code,
            "rank": p.rank, "point": {"lat": p.lat, "lon": p.lon}, "reason": p.reason, "sigma": p.sigma,
            "nearest_sample_m": p.nearest_sample_m, "status": p.status, "closed_by_sample": p.closed_by_sample,
            "closed_at": isoformat(p.closed_at), "planned_at": isoformat(p.created_at)}


def plan_summary(plan: SamplingPlan) -> dict[str, Any]:
    return {"plan": plan.number, "status": plan.status, "parcels": list(plan.parcels),
            "created_by": plan.created_by, "created_at": isoformat(plan.created_at),
            "replaced_at": isoformat(plan.replaced_at)}


def plan_dict(device: Device, plan: SamplingPlan | None) -> dict[str, Any]:
    """The device's plan with each point's state (``items`` in rank order; none without a plan)."""
    if plan is None:
        return {"device_id": device.device_id, "plan": None, "status": None, "items": [], "open": 0}
    items = [{"id": p.key, **point_data(p)} for p in db.session.scalars(
        select(PlannedPoint).where(PlannedPoint.plan_id == plan.id).order_by(PlannedPoint.rank))]
    return {"device_id": device.device_id, **plan_summary(plan), "items": items,
            "open": sum(1 for i in items if i["status"] == "open")}


def current_plan(device: Device) -> SamplingPlan | None:
    return _active_plan(device)


def open_points(device: Device) -> list[PlannedPoint]:
    """The device's open planned points, in rank order (the console's device page)."""
    return list(db.session.scalars(select(PlannedPoint).where(
        PlannedPoint.device_pk == device.id, PlannedPoint.status == "open").order_by(PlannedPoint.rank)))


def plan_preview(device: Device, codes: Sequence[str]) -> dict[str, Any]:
    """What sending ``codes`` would do (the console's confirmation): how many, how many to assign, how
    many open points it withdraws. Codes the caller may not see are left to ``push_plan`` to refuse."""
    parcels = {p.code: p for p in db.session.scalars(select(Parcel).where(Parcel.code.in_(list(codes))))}
    withdrawn = db.session.scalar(select(func.count()).select_from(PlannedPoint).where(
        PlannedPoint.device_pk == device.id, PlannedPoint.status == "open")) or 0
    return {"count": len(codes), "to_assign": len(_unassigned(device, parcels)), "withdrawn": int(withdrawn)}
