"""OpenRosa endpoints for ODK Collect and Enketo (DESIGN §4.3): form list, form, submissions.

Every response carries ``X-OpenRosa-Version: 1.0``; errors are OpenRosa XML responses of the
same status (the renderer below is registered for this blueprint with ``fieldsvc.http``).
Auth: the device token in the URL (``/key/<token>/...``, see ``keyurl``), the device token
(Bearer), or HTTP Basic with a sampler's username and password. URLs the server hands out
(download, manifest, media) carry the same ``/key/<token>`` prefix the request came with.

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

from ..dbtypes import utcnow
from ..errors import Problem, unauthorized, validation_failed
from ..extensions import db
from ..http import OFFICIALS, authenticate_token, current_actor, register_error_renderer, requires_role
from ..openapi import doc
from . import extensions, parcels, services
from .keyurl import KEY_ENVIRON, KEY_PREFIX_ENVIRON, KeyUrls
from .submission import MAX_XML_BYTES, parse_submission
from .xform import FORM_ID, form_list_xml, manifest_xml, response_xml

bp = Blueprint("openrosa", __name__)
forms_bp = Blueprint("forms", __name__, url_prefix="/api/v1/forms")
XML_TYPE = "text/xml; charset=utf-8"  # as content_type: ``mimetype=`` would add a second charset
XML_PART = "xml_submission_file"
# Collect sums the sizes of the files it puts in one POST up to X-OpenRosa-Accept-Content-Length;
# the boundaries and part headers come on top, so the advertised figure leaves this much room
# under the largest body taken (MAX_REQUEST_BYTES).
MULTIPART_ALLOWANCE = 64 * 1024


@bp.record_once
def _xml_errors(state: Any) -> None:
    register_error_renderer(state.app, bp.name, render_problem)
    state.app.wsgi_app = KeyUrls(state.app.wsgi_app)


def advertised_limit() -> int:
    """``X-OpenRosa-Accept-Content-Length``: the largest body taken, less the multipart allowance."""
    limit = current_app.config["MAX_REQUEST_BYTES"]
    return max(limit - MULTIPART_ALLOWANCE, limit // 2)


def _openrosa_headers(response: Response) -> Response:
    response.headers["X-OpenRosa-Version"] = "1.0"
    response.headers["X-OpenRosa-Accept-Content-Length"] = str(advertised_limit())
    return response


bp.after_request(_openrosa_headers)


def render_problem(problem: Problem) -> Response:
    """A Problem as an OpenRosa response: the status, and the message with the fields it names."""
    message = problem.message
    fields = problem.details.get("fields") if isinstance(problem.details.get("fields"), dict) else None
    if fields:
        message = services.sentence(message) + " " + services.sentence("; ".join(
            f"{k}: {services.clause(' '.join(map(str, v)) if isinstance(v, list) else str(v))}"
            for k, v in fields.items()))
    body = response_xml(f"{services.sentence(message)} [{problem.code}]", "error")
    response = Response(body, status=problem.status, content_type=XML_TYPE)
    for name, value in problem.headers.items():
        response.headers[name] = value
    if problem.status == 401:
        if request.environ.get(KEY_ENVIRON) is None:  # Collect prompts for a password on a Basic challenge
            response.headers["WWW-Authenticate"] = 'Basic realm="fieldsvc"'
            response.headers.add("WWW-Authenticate", 'Bearer realm="fieldsvc"')
        else:  # a key URL: a password would not help; the device must be set up again
            response.headers["WWW-Authenticate"] = 'Bearer realm="fieldsvc"'
    return _openrosa_headers(response)


def openrosa_auth(view: Callable) -> Callable:
    """Resolve the caller before the role check: the key in the URL, else ``Authorization: Basic``;
    Bearer works as everywhere.

    A key must be a device token; it is checked on every request (a revoked device is refused at
    once). A failed Basic login is counted (and committed) like a failed token login, then 401.
    """

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any):
        key = request.environ.get(KEY_ENVIRON)
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if key is not None:
            if not key:
                raise unauthorized("The URL's key is empty.", code="invalid_token")
            actor = authenticate_token(key)
            if actor.device_pk is None:
                raise unauthorized("A key URL takes a device token.", code="invalid_token")
            g.actor = actor
        elif scheme.lower() == "basic":
            actor = services.basic_actor(credentials, request.remote_addr or "unknown", current_app.config)
            if isinstance(actor, Problem):
                db.session.commit()  # the failure count must stick
                raise actor
            g.actor = actor
        return view(*args, **kwargs)

    return wrapper


def _xml(body: str, status: int = 200) -> Response:
    return Response(body, status=status, content_type=XML_TYPE)


def _base() -> str:
    """The public base URL with the request's ``/key/<token>`` prefix, for URLs handed to Collect."""
    return current_app.config["PUBLIC_BASE_URL"] + request.environ.get(KEY_PREFIX_ENVIRON, "")


def _form_or_404(form_id: str):
    form = services.current_form()
    if form_id != form.form_id:
        raise Problem(404, "not_found", f"There is no form {form_id!r}; this server has {FORM_ID!r}.")
    return form


@bp.get("/formList")
@openrosa_auth
@requires_role("sampler")
@doc(responses={200: "OpenRosa xforms list (text/xml)", 401: "Basic or Bearer credentials needed"},
     content_type="text/xml")
def form_list():
    """The forms this server takes: the soil-sample form (``?formID=`` filters), with its manifest."""
    form = services.current_form()
    wanted = request.args.get("formID")
    forms = [form] if wanted in (None, "", form.form_id) else []
    base = _base()
    return _xml(form_list_xml(forms, {form.form_id: f"{base}/forms/{form.form_id}.xml"},
                              {form.form_id: f"{base}/forms/{form.form_id}/manifest"}))


@bp.get("/forms/<form_id>.xml")
@openrosa_auth
@requires_role("sampler")
@doc(responses={200: "The XForm (text/xml)", 404: "No such form"}, content_type="text/xml")
def form_xml(form_id: str):
    """The soil-sample XForm; its fields carry a pushed sample's data names."""
    form = _form_or_404(form_id)
    response = _xml(form.xml)
    response.headers["ETag"] = f'"{form.md5}"'
    return response


@bp.get("/forms/<form_id>/manifest")
@openrosa_auth
@requires_role("sampler")
@doc(responses={200: "The form's manifest (text/xml): the caller's parcels.csv", 404: "No such form"},
     content_type="text/xml")
def form_manifest(form_id: str):
    """The media files of the form: ``parcels.csv`` (the caller's parcels); its hash follows them."""
    _form_or_404(form_id)
    attachment = parcels.parcel_csv(current_actor())
    url = f"{_base()}/forms/{form_id}/media/{attachment.filename}"
    return _xml(manifest_xml([(attachment.filename, attachment.md5, url)]))


@bp.get("/forms/<form_id>/media/<filename>")
@openrosa_auth
@requires_role("sampler")
@doc(responses={200: "parcels.csv for the caller (text/csv)", 404: "No such form or file"},
     content_type="text/csv")
def form_media(form_id: str, filename: str):
    """A media file of the form (``parcels.csv``, scoped to the calling device)."""
    _form_or_404(form_id)
    if filename != parcels.FILENAME:
        raise Problem(404, "not_found", f"The form has no media file {filename!r}.")
    attachment = parcels.parcel_csv(current_actor())
    response = Response(attachment.content, content_type="text/csv; charset=utf-8")
    response.headers["ETag"] = f'"{attachment.md5}"'
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@bp.route("/submission", methods=["HEAD"])
@openrosa_auth
@requires_role("sampler")
def submission_head():
    """Pre-flight: 204 with ``X-OpenRosa-Accept-Content-Length`` (the files one POST may carry)."""
    return Response(status=204)


@bp.post("/submission")
@openrosa_auth
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
    client = services.Client(request.args.get("deviceID"), request.headers.get("User-Agent"))
    sent_at = services.device_sent_at(request.headers.get("Date"), utcnow())
    outcome = services.submit(sub, parts, current_actor(), sent_at=sent_at, incomplete=incomplete,
                              hold_ttl_s=current_app.config["HOLD_TTL_S"], client=client)
    nature = "submit_success" if outcome.status < 400 else "error"
    response = _xml(response_xml(outcome.message, nature), outcome.status)  # returned: a kept conflict commits
    response.headers["Location"] = f"{current_app.config['PUBLIC_BASE_URL']}/api/v1/samples/{outcome.sample_id}"
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


# --- form extensions (JSON API) -------------------------------------------------------------------

@forms_bp.post("/extensions")
@requires_role(*OFFICIALS)
@doc(body={"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}},
     content_type="multipart/form-data",
     responses={201: "A new extension version", 200: "The same file again: the version it made",
                422: "Not an XLSForm, or a core question changed (naming the row)"})
def upload_extension():
    """Upload an XLSForm whose extra questions join the soil-sample form under ``extra`` (versioned)."""
    if request.mimetype != "multipart/form-data":
        raise Problem(415, "unsupported_media_type", "POST multipart/form-data with the XLSForm as 'file'.")
    upload = request.files.get("file")
    if upload is None:
        raise validation_failed({"file": ["is required (an XLSForm .xlsx)"]})
    content = upload.stream.read(extensions.MAX_XLSFORM_BYTES + 1)
    extension, created = extensions.upload(upload.filename or "form.xlsx", content, current_actor())
    return extensions.extension_dict(extension), 201 if created else 200


@forms_bp.get("/extensions")
@requires_role(*OFFICIALS)
def current_extension():
    """The extension the served form carries now (null before any upload)."""
    newest = extensions.newest()
    return {"extension": extensions.extension_dict(newest) if newest else None,
            "form_version": services.current_form().version}
