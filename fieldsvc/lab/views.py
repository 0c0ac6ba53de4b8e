"""Lab results endpoints (DESIGN §4.5). Thin: upload/schema → service → JSON."""

from __future__ import annotations

from flask import Blueprint, current_app, request

from ..errors import Problem, validation_failed
from ..http import current_actor, json_body, load, query_args, requires_role
from ..openapi import doc
from ..schemas import page_limit
from . import services
from .importing import OLE_MAGIC, ZIP_MAGIC, XlsxLimits
from .schemas import BulkApproveIn, BulkRejectIn, ImportArgs, ImportListArgs, ReferenceMaterialIn, RejectIn, ResultArgs

bp = Blueprint("lab", __name__, url_prefix="/api/v1/lab")

READERS = ("lab", "official", "admin")
IMPORTERS = ("lab", "official")  # an official may upload a file a lab sent; four-eyes still applies
MULTIPART_SLACK = 64 * 1024  # boundaries and part headers around the file
UPLOAD = {"type": "object", "required": ["file"],
          "properties": {"file": {"type": "string", "format": "binary", "description": "CSV or XLSX"},
                         "lab": {"type": "string", "description": "the lab's name (default: your username)"}}}


@bp.post("/imports")
@requires_role(*IMPORTERS)
@doc(query=ImportArgs, body=UPLOAD, content_type="multipart/form-data",
     responses={200: "Dry-run report, or the earlier import of the same file", 201: "Imported",
                409: "already_imported: the same file came from another county's account",
                413: "File too large (or an XLSX that unpacks past a limit)",
                415: "Not multipart, or not CSV/XLSX", 422: "Row errors; nothing written"})
def create_import():
    """Import a lab CSV/XLSX: dry run, all or nothing, idempotent by SHA-256."""
    args = query_args(ImportArgs())
    data, filename = _uploaded_file()
    lab = request.form.get("lab")
    if lab is not None and len(lab) > 120:
        raise validation_failed({"lab": ["at most 120 characters"]})
    outcome = services.import_results(data, filename, current_actor(), lab=lab, dry_run=args["dry_run"],
                                      xlsx_limits=XlsxLimits.from_config(current_app.config))
    return outcome.report, 201 if outcome.created else 200


def _uploaded_file() -> tuple[bytes, str]:
    """The multipart ``file`` part: 413 before reading when too big, 415 for another media type."""
    limit = current_app.config["LAB_IMPORT_MAX_BYTES"]
    too_big = Problem(413, "payload_too_large", f"The file is larger than {limit} bytes.", max_bytes=limit)
    if request.content_length is not None and request.content_length > limit + MULTIPART_SLACK:
        raise too_big
    if request.mimetype != "multipart/form-data":
        raise Problem(415, "unsupported_media_type", "Upload the file as multipart/form-data in a part named 'file'.")
    upload = request.files.get("file")
    if upload is None:
        raise validation_failed({"file": ["missing: send the CSV or XLSX as a file part named 'file'"]})
    data = upload.stream.read(limit + 1)
    if len(data) > limit:
        raise too_big
    if not data:
        raise validation_failed({"file": ["is empty"]})
    text_like = data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" not in data[:8192]
    if not (data.startswith(ZIP_MAGIC) or data.startswith(OLE_MAGIC) or text_like):
        raise Problem(415, "unsupported_media_type", "The file is neither CSV (text) nor XLSX.",
                      fields={"file": ["must be CSV or XLSX"]})
    return data, (upload.filename or "upload.csv")[:255]


@bp.get("/imports")
@requires_role(*READERS)
@doc(query=ImportListArgs)
def list_imports():
    """Imports, oldest first."""
    args = query_args(ImportListArgs())
    return services.list_imports(current_actor(), page_limit(args), args["cursor"]).to_dict()


@bp.get("/imports/<int:import_id>")
@requires_role(*READERS)
def get_import(import_id: int):
    """One import with its outcomes (warnings, QC items, held sample codes)."""
    lab_import = services.get_import(import_id, current_actor())
    return services.import_dict(lab_import) | {"outcomes": lab_import.outcomes}


@bp.get("/results")
@requires_role(*READERS)
@doc(query=ResultArgs)
def list_results():
    """Results (every version), filtered by sample id or bag code, status, analyte, import."""
    args = query_args(ResultArgs())
    return services.list_results(args, current_actor(), page_limit(args)).to_dict()


@bp.get("/results/<int:result_id>")
@requires_role(*READERS)
def get_result(result_id: int):
    """One result."""
    return services.result_dict(services.get_result(result_id, current_actor()))


@bp.post("/results/<int:result_id>/approve")
@requires_role("official")
@doc(responses={200: "Approved (or one more approval recorded)", 403: "self_approval",
                409: "already_approved, qc_hold, held_result, not_pending, superseded, qc_sample"})
def approve(result_id: int):
    """Approve a result (not one you imported; each official once)."""
    required = current_app.config["LAB_APPROVALS_REQUIRED"]
    result = services.approve_result(result_id, current_actor(), required)
    return services.result_dict(result) | {"approvals_required": required}


@bp.post("/results/<int:result_id>/reject")
@requires_role("official")
@doc(body=RejectIn, responses={200: "Rejected", 409: "not_pending, superseded, qc_sample"})
def reject(result_id: int):
    """Reject a result with a reason; it is kept and never graded."""
    data = load(RejectIn(), json_body())
    return services.result_dict(services.reject_result(result_id, data["reason"], current_actor()))


BULK_RESPONSES = {200: "Each id judged alone: {items: [{id, status} | {id, code, message}], done, refused}",
                  422: "ids missing, empty, over 10,000, or not strings"}


@bp.post("/results/approve")
@requires_role("official")
@doc(body=BulkApproveIn, responses=BULK_RESPONSES)
def approve_many():
    """Approve up to 10,000 results in one transaction; a refused id (four-eyes, QC hold, decided) is
    reported with its code and never blocks the others; parcels are re-graded once for the batch."""
    data = load(BulkApproveIn(), json_body())
    outcome = services.review_results("approve", data["ids"], current_actor(), reason=data["reason"],
                                      approvals_required=current_app.config["LAB_APPROVALS_REQUIRED"])
    return _bulk_body(outcome)


@bp.post("/results/reject")
@requires_role("official")
@doc(body=BulkRejectIn, responses=BULK_RESPONSES)
def reject_many():
    """Reject up to 10,000 results with one reason, each id judged alone, in one transaction."""
    data = load(BulkRejectIn(), json_body())
    return _bulk_body(services.review_results("reject", data["ids"], current_actor(), reason=data["reason"]))


def _bulk_body(outcome: services.BulkOutcome) -> dict:
    return {"items": outcome.items, "done": outcome.done, "refused": outcome.refused}


@bp.post("/reference-materials")
@requires_role("lab", "official")
@doc(body=ReferenceMaterialIn, responses={201: "Registered", 409: "duplicate_code"})
def create_reference_material():
    """Register a certified reference material (values ± U) for CRM QC rows."""
    data = load(ReferenceMaterialIn(), json_body())
    rows = services.create_reference_material(data, current_actor())
    return services.reference_material_dict(data["code"].strip(), rows), 201


@bp.get("/reference-materials")
@requires_role(*READERS)
def list_reference_materials():
    """Registered reference materials with their certified values."""
    return {"items": services.list_reference_materials(), "next_cursor": None}
