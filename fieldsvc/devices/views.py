"""Device endpoints (DESIGN §4.1)."""

from __future__ import annotations

from flask import Blueprint, current_app, request

from ..errors import validation_failed
from ..grading import plans
from ..http import OFFICIALS, current_actor, if_match_version, json_body, load, query_args, requires_role
from ..openapi import doc
from ..render.qr import qr_png
from ..schemas import page_limit
from . import collect, services
from .models import Device
from .schemas import DeviceArgs, DeviceIn, DevicePatch, PlanIn

bp = Blueprint("devices", __name__, url_prefix="/api/v1/devices")


@bp.post("")
@requires_role(*OFFICIALS)
@doc(body=DeviceIn, responses={201: "Registered; the token is shown only in this response"})
def register():
    """Register a device for a sampler with its assignment; returns its token once."""
    config = current_app.config
    registered = services.register_device(load(DeviceIn(), json_body()), current_actor(),
                                          secret_key=config["SECRET_KEY"])
    text = services.provisioning_text(config["PUBLIC_BASE_URL"], registered.device, registered.token)
    body = services.device_dict(registered.device)
    body.update(token=registered.token, provisioning_qr_url=services.png_data_url(qr_png(text)))
    body.update(_collect(registered.device))
    return body, 201


def _collect(device: Device) -> dict[str, object]:
    """``collect_settings`` and ``collect_settings_qr_url`` (DESIGN §4.3); null when not recoverable."""
    config = current_app.config
    settings = services.collect_settings(device, config["PUBLIC_BASE_URL"], config["SECRET_KEY"])
    qr_url = services.png_data_url(qr_png(collect.qr_payload(settings), box_size=4)) if settings else None
    return {"collect_settings": settings, "collect_settings_qr_url": qr_url}


@bp.get("")
@requires_role(*OFFICIALS)
@doc(query=DeviceArgs)
def list_devices():
    """List devices."""
    args = query_args(DeviceArgs())
    return services.list_devices(args, current_actor(), page_limit(args)).to_dict()


@bp.get("/<device_id>")
@requires_role(*OFFICIALS)
def get_device(device_id: str):
    """One device with its assignment, last_seen_at and ODK Collect's settings (and their QR)."""
    device = services.get_device_by_id(device_id, current_actor())
    return {**services.device_dict(device), **_collect(device)}


@bp.patch("/<device_id>")
@requires_role(*OFFICIALS)
@doc(body=DevicePatch)
def change(device_id: str):
    """Change a device's name or assignment."""
    data = load(DevicePatch(), json_body())
    if "base_version" not in data and request.headers.get("If-Match"):
        data["base_version"] = if_match_version("device")
    if not set(data) - {"base_version"}:
        raise validation_failed({"_body": ["nothing to change"]})
    actor = current_actor()
    device = services.change_assignment(services.get_device_by_id(device_id, actor, for_update=True), data, actor)
    return services.device_dict(device)


@bp.post("/<device_id>/revoke")
@requires_role(*OFFICIALS)
def revoke(device_id: str):
    """Revoke a device: its next request gets 401."""
    actor = current_actor()
    return services.device_dict(services.revoke_device(services.get_device_by_id(device_id, actor, for_update=True),
                                                       actor))


@bp.post("/<device_id>/plan")
@requires_role(*OFFICIALS)
@doc(body=PlanIn, responses={201: "A new plan (the previous one is kept, replaced)",
                             200: "The same list is already the device's plan: nothing new"})
def push_plan(device_id: str):
    """Send a ranked parcel list to a device as planned points (they come down its pull as ``planned_point``)."""
    data = load(PlanIn(), json_body())
    actor = current_actor()
    device = services.get_device_by_id(device_id, actor, for_update=True)
    plan, created = plans.push_plan(device, data["parcels"], actor, assign=data["assign"])
    return plans.plan_dict(device, plan), 201 if created else 200


@bp.get("/<device_id>/plan")
@requires_role(*OFFICIALS)
def get_plan(device_id: str):
    """The device's current plan: each planned point with its suggested point and state (open, closed)."""
    device = services.get_device_by_id(device_id, current_actor())
    return plans.plan_dict(device, plans.current_plan(device))
