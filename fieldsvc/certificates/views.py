"""Certificate endpoints for signed-in users (DESIGN §4.7). Thin: schema → service → JSON or PDF."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from ..errors import validation_failed
from ..http import ALL_ROLES, current_actor, json_body, load, query_args, requires_role
from ..openapi import doc
from ..schemas import page_limit
from . import services, sheets
from .schemas import (
    CertificateArgs,
    CertificateIn,
    LabelArgs,
    LabelSheetIn,
    LandLabelIn,
    RevokeIn,
    SerialArgs,
    SheetPdfArgs,
)

bp = Blueprint("certificates", __name__, url_prefix="/api/v1")

PDF = "application/pdf"


@bp.post("/certificates")
@requires_role("official")
@doc(body=CertificateIn, responses={201: "Issued", 200: "A retry with the same Idempotency-Key",
                                    409: "not_qualified, with details.reasons"})
def issue():
    """Issue a certificate for a qualifying parcel, farm park or village (supersedes its valid one)."""
    data = load(CertificateIn(), json_body())
    key = request.headers.get("Idempotency-Key", "").strip() or None
    if key is not None and len(key) > 80:
        raise validation_failed({"Idempotency-Key": ["At most 80 characters."]})
    cert, created = services.issue_certificate(data, current_actor(), current_app.config, key)
    return services.certificate_dict(cert, current_app.config), 201 if created else 200


@bp.post("/land-labels")
@requires_role("official")
@doc(body=LandLabelIn, responses={201: "{code, kind: land_label, verify_url, conclusion}",
                                  200: "The subject's live land label (one per subject)",
                                  409: "not_graded"})
def issue_land_label():
    """A land label (soil passport) for any graded parcel, village or farm park, pass or fail."""
    data = load(LandLabelIn(), json_body())
    label, created = services.issue_land_label(data, current_actor(), current_app.config)
    body = services.certificate_dict(label, current_app.config)
    body.update(services.land_label_now(label))
    return body, 201 if created else 200


@bp.get("/certificates")
@requires_role(*ALL_ROLES)
@doc(query=CertificateArgs)
def list_certificates():
    """List certificates, by subject code, subject type or status (status judged now)."""
    args = query_args(CertificateArgs())
    return services.list_certificates(args, current_actor(), page_limit(args), current_app.config).to_dict()


@bp.get("/certificates/<code>")
@requires_role(*ALL_ROLES)
def get_certificate(code: str):
    """One certificate with its status now and its scan counts."""
    cert = services.get_certificate_by_code(code, current_actor())
    body = services.certificate_dict(cert, current_app.config)
    body["scans"]["by_client"] = services.scan_counts(cert)
    return body


@bp.get("/certificates/<code>.pdf")
@requires_role(*ALL_ROLES)
@doc(responses={200: "The A4 certificate (watermarked unless valid)"}, content_type=PDF)
def certificate_pdf(code: str):
    """The A4 certificate; a revoked, expired or superseded one comes back watermarked."""
    cert = services.get_certificate_by_code(code, current_actor())
    return _pdf(services.certificate_pdf(cert, current_app.config), f"certificate-{cert.code}.pdf")


@bp.post("/certificates/<code>/revoke")
@requires_role("official")
@doc(body=RevokeIn)
def revoke(code: str):
    """Revoke a certificate now, with a reason the public page shows."""
    data = load(RevokeIn(), json_body())
    cert = services.revoke_certificate(code, data["reason"].strip(), current_actor())
    return services.certificate_dict(cert, current_app.config)


@bp.get("/labels.pdf")
@requires_role("official")
@doc(query=LabelArgs, responses={200: "A label sheet: plain labels, or with ``serials`` N serial labels per code "
                                      "(DESIGN §4.7; made as a label sheet, counted once per Idempotency-Key)",
                                 409: "quota_exceeded, certificate_not_valid, idempotency_key_reused"},
     content_type=PDF)
def labels():
    """Labels for valid certificates from a start slot. Plain labels create and count nothing. With
    ``serials`` (the contract's ``labels.pdf?serials=N``) the labels are made as a label sheet, counted
    against the quotas once: a retry carrying the same ``Idempotency-Key`` gets the same sheet's PDF,
    and ``POST /api/v1/label-sheets`` is the way to make a sheet and fetch it again later."""
    args = query_args(LabelArgs())
    config = current_app.config
    code_list = services.parse_codes(args["codes"], config["LABELS_MAX_CODES"])
    if args["serials"]:
        sheet, _created = sheets.create_sheet(code_list, args["template"], args["start_slot"], args["serials"],
                                              args["override_reason"], current_actor(), config, _idempotency_key())
        body = sheets.sheet_pdf(sheet, current_actor(), config, args["template"], args["start_slot"])
        response = _pdf(body, f"label-sheet-{sheet.id}.pdf")
        response.headers["Location"] = f"/api/v1/label-sheets/{sheet.id}"
        return response
    body = services.labels_pdf(code_list, args["template"], args["start_slot"], current_actor(), config)
    return _pdf(body, f"labels-{args['template']}.pdf")


@bp.post("/label-sheets")
@requires_role("official")
@doc(body=LabelSheetIn, responses={201: "The sheet: {id, codes, serials_per_code, labels, pdf_url, items, quotas}",
                                   200: "A retry with the same Idempotency-Key: the same sheet",
                                   409: "quota_exceeded (naming each quota), certificate_not_valid, "
                                        "idempotency_key_reused"})
def create_label_sheet():
    """Print labels once: counts them against the quotas and creates their serials; a retry returns the same sheet."""
    data = load(LabelSheetIn(), json_body())
    config = current_app.config
    code_list = services.parse_codes(_codes_text(data["codes"]), config["LABELS_MAX_CODES"])
    sheet, created = sheets.create_sheet(code_list, data["template"], data["start_slot"], data["serials"],
                                         data["override_reason"], current_actor(), config, _idempotency_key())
    return sheets.sheet_dict(sheet, config), 201 if created else 200


@bp.get("/label-sheets/<int:sheet_id>")
@requires_role("official")
def label_sheet(sheet_id: int):
    """One sheet with every label it prints (code, serial, URL)."""
    return sheets.sheet_dict(sheets.get_sheet(sheet_id, current_actor()), current_app.config)


@bp.get("/label-sheets/<int:sheet_id>.pdf")
@requires_role("official")
@doc(query=SheetPdfArgs, responses={200: "The sheet's labels, the same serials every time (counts nothing)"},
     content_type=PDF)
def label_sheet_pdf(sheet_id: int):
    """The sheet's PDF, as often as needed; ``template``/``start_slot`` reprint it on other paper."""
    args = query_args(SheetPdfArgs())
    sheet = sheets.get_sheet(sheet_id, current_actor())
    body = sheets.sheet_pdf(sheet, current_actor(), current_app.config, args["template"], args["start_slot"])
    return _pdf(body, f"label-sheet-{sheet.id}.pdf")


def _codes_text(value: object) -> str:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ",".join(value)
    if isinstance(value, str):
        return value
    raise validation_failed({"codes": ["A list of certificate codes, or one string of them."]})


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key", "").strip() or None
    if key is not None and len(key) > 80:
        raise validation_failed({"Idempotency-Key": ["At most 80 characters."]})
    return key


@bp.get("/label-serials")
@requires_role("official")
@doc(query=SerialArgs, responses={200: "{items: [{code, serial, checks, days, first_checked_at, warning}]}"})
def label_serials():
    """Printed label serials with their checks: of one code, or (``flagged=1``) those the public page warns about."""
    args = query_args(SerialArgs())
    items = services.list_serials(current_actor(), current_app.config, args["code"], args["flagged"])
    return {"items": items, "next_cursor": None}


def _pdf(body: bytes, filename: str) -> Response:
    response = Response(body, mimetype=PDF)
    response.headers["Content-Disposition"] = f'inline; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response
