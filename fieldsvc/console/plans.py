"""The console's "where to sample next" pages: the ranked list of a county or village, and sending
it to a device as planned points (a confirmation page naming the device and the count first).

Routes hang on the console blueprint (``views.bp``) and follow its rules: thin, every route
declares its role, a service's refusal renders the console's error page. The ranking is
``grading.sampling.next_samples`` (as ``GET /api/v1/sampling/next``) and the send is
``grading.plans.push_plan`` (as ``POST /api/v1/devices/<id>/plan``, with ``assign``: the
confirmation says how many parcels join the device's assignment): these pages add no rule of their own.
"""

from __future__ import annotations

from flask import request, url_for
from sqlalchemy import select

from ..devices import services as devices
from ..devices.models import Device
from ..devices.schemas import PlanIn
from ..errors import validation_failed
from ..extensions import db
from ..grading import plans, sampling
from ..grading.pack_admin import resolve_pack
from ..grading.queries import get_subject
from ..grading.schemas import NextSamplesArgs
from ..http import current_actor, requires_role
from ..places.models import Region
from . import queries
from .views import DEVICE_WRITERS, READERS, _county, _form, _local, bp, done, page
from .views import _t as words

DEFAULT_LIMIT = 50


def _live_devices(county: str) -> list[Device]:
    """The devices an official could send this county's list to: live, of this county (or province-wide)."""
    stmt = queries.devices(current_actor()).where(Device.revoked_at.is_(None))
    return [d for d in db.session.scalars(stmt.order_by(Device.name, Device.id))
            if d.county_code in (None, county)]


@bp.get("/sampling-next")
@requires_role(*READERS)
def sampling_next():
    """Parcels of a county or village ranked by what a sample there would settle, to send to a device."""
    raw = {k: v for k, v in request.args.items() if k in ("county", "village", "limit") and v}
    raw.setdefault("limit", str(DEFAULT_LIMIT))
    if "county" not in raw and "village" not in raw:
        raw["county"] = _county()  # the account's own county (or the first one it sees)
    args = NextSamplesArgs().load(raw)
    pack = resolve_pack(None)
    kind, code = ("village", args["village"]) if args.get("village") else ("county", args["county"])
    subject = get_subject(kind, code, current_actor())  # 404 outside the account's county
    items = sampling.next_samples(subject.county, pack, args.get("village"), args["limit"])
    names = {r.code: r for r in db.session.scalars(select(Region).where(
        Region.code.in_(sorted({i["village"] for i in items}))))}
    return page("sampling_next.html", kind=kind, code=code, subject=subject, items=items, villages=names,
                devices=_live_devices(subject.county), limit=args["limit"])


def _plan_form() -> tuple[Device, list[str]]:
    form = _form()
    device_id = (form.get("device") or request.view_args.get("device_id") or "").strip()
    if not device_id:
        raise validation_failed({"device": [words("plan_pick_device")]})
    parcels = PlanIn().load({"parcels": request.form.getlist("parcels")})["parcels"]
    if not parcels:
        raise validation_failed({"parcels": [words("plan_pick_parcels")]})
    return devices.get_device_by_id(device_id, current_actor()), parcels


@bp.post("/sampling-next/confirm")
@requires_role(*DEVICE_WRITERS)
def plan_confirm():
    """Ask before sending: which device, how many points, how many parcels join its assignment, how many
    open points of its current plan it replaces."""
    device, parcels = _plan_form()
    preview = plans.plan_preview(device, parcels)
    back = request.form.get("back") or ""
    if not _local(back, path_only=True):  # only a page of this console (no open redirect)
        back = url_for("console.sampling_next", **({"county": device.county_code} if device.county_code else {}))
    return page("plan_confirm.html", device=devices.device_dict(device), parcels=parcels, preview=preview,
                back=back)


@bp.post("/devices/<device_id>/plan")
@requires_role(*DEVICE_WRITERS)
def push_plan(device_id: str):
    """Send the confirmed list to the device (its next pull brings the planned points)."""
    if request.form.get("confirmed") != "1":
        raise validation_failed({"confirmed": [words("plan_confirm_first")]})
    actor = current_actor()
    _, parcels = _plan_form()
    device = devices.get_device_by_id(device_id, actor, for_update=True)
    plan, created = plans.push_plan(device, parcels, actor, assign=True)
    key = "plan_sent_ok" if created else "plan_unchanged"
    return done(words(key, n=len(parcels), device=device.name, plan=plan.number),
                url_for("console.device", device_id=device_id))
