"""OpenRosa endpoints for ODK Collect and Enketo (DESIGN §4.3): form list, form, submissions.

Every response carries ``X-OpenRosa-Version: 1.0``; errors are OpenRosa XML responses of the
same status (the renderer below is registered for this blueprint with ``fieldsvc.http``).
Auth: the device token (Bearer) or HTTP Basic with a sampler's username and password.

Submission statuses: 201 the sample was stored (or was already, identical: a resend attaches
missing files); 202 accepted but held (its parcel is unknown to the server yet); 400 rejected
(the message lists the reasons by field); 409 the instanceID was already received with other
content (both kept for an official); 413 the body is larger than
``X-OpenRosa-Accept-Content-Length`` (refused before it is read).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from flask import Blueprint, Response, current_app, g, request

from ..errors import Problem
from ..extensions import db
from ..http import current_actor, register_error_renderer, requires_role
from ..openapi import doc
from . import services
from .submission import MAX_XML_BYTES, parse_submission
from .xform import FORM_ID, form_list_xml, response_xml

bp = Blueprint("openrosa", __name__)
XML = "text/xml; charset=utf-8"
XML_PART = "xml_submission_file"


@bp.record_once
def _xml_errors(state: Any) -> None:
    register_error_renderer(state.app, bp.name, render_problem)


def _openrosa_headers(response: Response) -> Response:
    response.headers["X-OpenRosa-Version"] = "1.0"
    response.headers["X-OpenRosa-Accept-Content-Length"] = str(current_app.config["MAX_REQUEST_BYTES"])
    return response


bp.after_request(_openrosa_headers)


def render_problem(problem: Problem) -> Response:
    """A Problem as an OpenRosa response: the status, and the message with the fields it names."""
    message = f"{problem.message}"
    fields = problem.details.get("fields") if isinstance(problem.details.get("fields"), dict) else None
    if fields:
        message += " " + "; ".join(f"{k}: {' '.join(map(str, v)) if isinstance(v, list) else v}"
                                   for k, v in fields.items())
    response = Response(response_xml(f"{message} [{problem.code}]", "error"), status=problem.status, mimetype=XML)
    for name, value in problem.headers.items():
        response.headers[name] = value
    if problem.status == 401:  # Collect and Enketo prompt for a username and password on a Basic challenge
        response.headers["WWW-Authenticate"] = 'Basic realm="fieldsvc"'
        response.headers.add("WWW-Authenticate", 'Bearer realm="fieldsvc"')
    return _openrosa_headers(response)


def accepts_basic(view: Callable) -> Callable:
    """Resolve ``Authorization: Basic`` to the user before the role check; Bearer works as everywhere.

    A failed Basic login is counted (and committed) like a failed token login, then answered 401.
    """

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any):
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":
            actor = services.basic_actor(credentials, request.remote_addr or "unknown", current_app.config)
            if isinstance(actor, Problem):
                db.session.commit()  # the failure count must stick
                raise actor
            g.actor = actor
        return view(*args, **kwargs)

    return wrapper


def _xml(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype=XML)


@bp.get("/formList")
@accepts_basic
@requires_role("sampler")
@doc(responses={200: "OpenRosa xforms list (text/xml)", 401: "Basic or Bearer credentials needed"},
     content_type="text/xml")
def form_list():
    """The forms this server takes: the soil-sample form (``?formID=`` filters)."""
    form = services.current_form()
    wanted = request.args.get("formID")
    forms = [form] if wanted in (None, "", form.form_id) else []
    base = current_app.config["PUBLIC_BASE_URL"]
    return _xml(form_list_xml(forms, {form.form_id: f"{base}/forms/{form.form_id}.xml"}))


@bp.get("/forms/<form_id>.xml")
@accepts_basic
@requires_role("sampler")
@doc(responses={200: "The XForm (text/xml)", 404: "No such form"}, content_type="text/xml")
def form_xml(form_id: str):
    """The soil-sample XForm; its fields carry a pushed sample's data names."""
    form = services.current_form()
    if form_id != form.form_id:
        raise Problem(404, "not_found", f"There is no form {form_id!r}; this server has {FORM_ID!r}.")
    response = _xml(form.xml)
    response.headers["ETag"] = f'"{form.md5}"'
    return response


@bp.route("/submission", methods=["HEAD"])
@accepts_basic
@requires_role("sampler")
def submission_head():
    """Pre-flight: 204 with ``X-OpenRosa-Accept-Content-Length`` (the largest POST taken)."""
    return Response(status=204)


@bp.post("/submission")
@accepts_basic
@requires_role("sampler")
@doc(body={"type": "object", "properties": {XML_PART: {"type": "string", "format": "binary"}}},
     content_type="multipart/form-data",
     responses={201: "Stored (or already stored: missing files attached)", 202: "Held: parcel unknown yet",
                400: "Rejected; the message names the fields", 409: "Same instanceID, different content",
                413: "Larger than X-OpenRosa-Accept-Content-Length"})
def submit():
    """An XForm instance plus its photos; ``*isIncomplete*=yes`` when more parts follow."""
    limit = current_app.config["MAX_REQUEST_BYTES"]
    if request.content_length is not None and request.content_length > limit:
        raise Problem(413, "payload_too_large", f"The submission is larger than {limit} bytes; split it.",
                      max_bytes=limit)
    request.max_content_length = limit  # a chunked body is cut off at the same size while it streams
    if request.mimetype != "multipart/form-data":
        raise Problem(415, "unsupported_media_type", f"POST multipart/form-data with {XML_PART}.")
    sub = parse_submission(_xml_part(), FORM_ID)
    parts: dict[str, services.Part] = {}
    for key, upload in request.files.items(multi=True):
        if key == XML_PART:
            continue
        name = upload.filename or key
        part = services.read_part(name, upload.stream, upload.content_type)
        parts.setdefault(name, part)
        parts.setdefault(key, part)
    incomplete = request.form.get("*isIncomplete*", "").strip().lower() == "yes"
    outcome = services.submit(sub, parts, current_actor(), sent_at=services.device_sent_at(request.headers.get("Date")),
                              incomplete=incomplete, hold_ttl_s=current_app.config["HOLD_TTL_S"])
    nature = "submit_success" if outcome.status < 400 else "error"
    response = _xml(response_xml(outcome.message, nature), outcome.status)  # returned: a kept conflict commits
    response.headers["Location"] = f"{current_app.config['PUBLIC_BASE_URL']}/api/v1/samples/{sub.id}"
    return response


def _xml_part() -> bytes:
    upload = request.files.get(XML_PART)
    if upload is not None:
        raw = upload.stream.read(MAX_XML_BYTES + 1)
    else:
        raw = request.form.get(XML_PART, "").encode("utf-8")
    if not raw.strip():
        raise Problem(400, "invalid_submission", f"The {XML_PART} part is missing or empty.",
                      fields={XML_PART: ["Is required."]})
    return raw
