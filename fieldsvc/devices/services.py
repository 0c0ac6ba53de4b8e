"""Register devices, change their assignment, revoke them. Flush, never commit."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from sqlalchemy import select, update

from .. import access
from ..audit.services import Change, record
from ..auth.models import ApiToken, User
from ..auth.principal import Actor
from ..auth.tokens import new_token, token_digest
from ..dbtypes import isoformat, utcnow
from ..errors import Problem, conflict, not_found, validation_failed
from ..extensions import db
from ..paging import Page, paginate
from ..places.models import Parcel, Region
from ..sequence import allocate
from . import collect
from .models import Device, DeviceAssignment


@dataclass(frozen=True)
class Registered:
    device: Device
    token: str


def device_scope(actor: Actor) -> list[Any]:
    """``access.device_filter``: the county's devices; a sampler only its own."""
    return access.device_filter(actor, Device.county_code, Device.user_id, Device.id)


def get_device_by_id(device_id: str, actor: Actor, *, for_update: bool = False) -> Device:
    """The device, visible to ``actor``; ``for_update`` locks its row until the transaction ends,
    so two concurrent changes apply one after the other (both used to read version N and write
    N + 1 on PostgreSQL: a lost update). :raise 404: unknown or out of scope."""
    stmt = select(Device).where(Device.device_id == device_id, *device_scope(actor))
    device = db.session.scalar(stmt.with_for_update() if for_update else stmt)
    if device is None:
        raise not_found("device", device_id)
    return device


def list_devices(args: Mapping[str, Any], actor: Actor, limit: int) -> Page:
    """Devices the caller may see (live ones unless ``include_revoked``), one page."""
    stmt = select(Device).where(*device_scope(actor))
    if not args.get("include_revoked"):
        stmt = stmt.where(Device.revoked_at.is_(None))
    rows, cursor = paginate(stmt, Device.id, limit, args.get("cursor"))
    return Page([device_dict(r) for r in rows], cursor)


def register_device(data: Mapping[str, Any], actor: Actor, *, secret_key: str | None = None) -> Registered:
    """A device acts as a sampler account; its token is returned here once and stored hashed.

    With ``secret_key`` a copy of the token is also kept encrypted for ODK Collect's settings QR
    (``fieldsvc.devices.collect``), which the device API and console can show again.
    """
    owner = db.session.scalar(select(User).where(User.username == data["user"]))
    errors: dict[str, list[str]] = {}
    if owner is None or not access.may_see_county(actor, owner.county_code):
        errors["user"] = [f"unknown user {data['user']}"]
    elif owner.role != "sampler":
        errors["user"] = [f"{owner.username} is a {owner.role}; devices act for sampler accounts"]
    county = actor.county_code or (owner.county_code if owner else None)
    errors.update(_check_assignment(data.get("villages", []), data.get("parcels", []), actor))
    if errors:
        raise validation_failed(errors)
    device = Device(device_id="dev_" + secrets.token_hex(8), name=data["name"], user_id=owner.id,
                    county_code=county, created_by=actor.label)
    db.session.add(device)
    db.session.flush()
    token = new_token("fsd")
    if secret_key:
        device.collect_key = collect.seal(token, secret_key)
    db.session.add(ApiToken(token_hash=token_digest(token), user_id=owner.id, device_pk=device.id))
    _set_assignment(device, data.get("villages", []), data.get("parcels", []))
    record(actor.label, Change("device", device.device_id, "register", after=device_dict(device)))
    return Registered(device, token)


def change_assignment(device: Device, data: Mapping[str, Any], actor: Actor) -> Device:
    """Replace the assignment; what the device loses comes down as deletes on its next pull.

    Load ``device`` with ``for_update``. An optional ``base_version`` (or ``If-Match``) refuses a
    change made from a stale read: 409 ``version_conflict`` with the current version.
    """
    if device.revoked_at is not None:
        raise Problem(409, "device_revoked", f"Device {device.device_id} is revoked.")
    base = data.get("base_version")
    if base is not None and base != device.version:
        raise conflict("version_conflict", f"Device {device.device_id} is at version {device.version}, "
                                           f"not {base}; read it again.", current_version=device.version)
    before = device_dict(device)
    villages = data.get("villages", assigned_codes(device, "village"))
    parcels = data.get("parcels", assigned_codes(device, "parcel"))
    errors = _check_assignment(villages, parcels, actor)
    if errors:
        raise validation_failed(errors)
    if "name" in data:
        device.name = data["name"]
    _set_assignment(device, villages, parcels)
    device.version += 1
    db.session.flush()
    record(actor.label, Change("device", device.device_id, "assign", before=before, after=device_dict(device)))
    return device


def revoke_device(device: Device, actor: Actor) -> Device:
    if device.revoked_at is None:
        now = utcnow()
        device.revoked_at = now
        db.session.execute(update(ApiToken).where(ApiToken.device_pk == device.id, ApiToken.revoked_at.is_(None))
                           .values(revoked_at=now))
        db.session.flush()
        record(actor.label, Change("device", device.device_id, "revoke", after=device_dict(device)))
    return device


def _check_assignment(villages: Iterable[str], parcels: Iterable[str], actor: Actor) -> dict[str, list[str]]:
    villages, parcels = list(villages), list(parcels)
    errors: dict[str, list[str]] = {}
    found_v = {c for c, county in db.session.execute(
        select(Region.code, Region.county_code).where(Region.code.in_(villages), Region.level == "village"))
        if access.may_see_county(actor, county)}
    if missing := sorted(set(villages) - found_v):
        errors["villages"] = [f"unknown village {c}" for c in missing[:20]]
    found_p = {c for c, county in db.session.execute(
        select(Parcel.code, Parcel.county_code).where(Parcel.code.in_(parcels), Parcel.deleted_at.is_(None)))
        if access.may_see_county(actor, county)}
    if missing := sorted(set(parcels) - found_p):
        errors["parcels"] = [f"unknown parcel {c}" for c in missing[:20]]
    return errors


def _set_assignment(device: Device, villages: Iterable[str], parcels: Iterable[str]) -> None:
    wanted = {("village", c) for c in villages} | {("parcel", c) for c in parcels}
    rows = {(a.kind, a.code): a for a in db.session.scalars(
        select(DeviceAssignment).where(DeviceAssignment.device_pk == device.id))}
    changed = [k for k, a in rows.items() if a.active != (k in wanted)]
    added = [k for k in wanted if k not in rows]
    seqs = iter(allocate(len(changed) + len(added))) if changed or added else iter(())
    for key in changed:
        rows[key].active, rows[key].seq = key in wanted, next(seqs)
    for kind, code in added:
        db.session.add(DeviceAssignment(device_pk=device.id, kind=kind, code=code, active=True, seq=next(seqs)))
    db.session.flush()


def assigned_codes(device: Device, kind: str) -> list[str]:
    return sorted(db.session.scalars(select(DeviceAssignment.code).where(
        DeviceAssignment.device_pk == device.id, DeviceAssignment.kind == kind, DeviceAssignment.active.is_(True))))


def device_dict(device: Device) -> dict[str, Any]:
    owner = db.session.get(User, device.user_id)
    return {"device_id": device.device_id, "name": device.name, "user": owner.username if owner else None,
            "county": device.county_code, "villages": assigned_codes(device, "village"),
            "parcels": assigned_codes(device, "parcel"), "version": device.version,
            "created_at": isoformat(device.created_at), "revoked_at": isoformat(device.revoked_at),
            "last_seen_at": isoformat(device.last_seen_at)}


def provisioning_text(public_base_url: str, device: Device, token: str) -> str:
    """What the provisioning QR carries: the field app's URL with the token in the fragment.

    A fragment never reaches a server log, and a phone camera opens the link in the field app.
    """
    return f"{public_base_url}/field/#server={public_base_url}&device={device.device_id}&token={token}"


def png_data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def collect_settings(device: Device, public_base_url: str, secret_key: str, language: str = "zh"
                     ) -> dict[str, Any] | None:
    """ODK Collect's settings for ``device`` (server URL with its key), or None when the key cannot
    be recovered (registered before Collect keys were kept, a changed SECRET_KEY) or it is revoked."""
    token = collect.unseal(device.collect_key, secret_key)
    if token is None or device.revoked_at is not None:
        return None
    return collect.settings(public_base_url, token, device.name, language)
