"""Media endpoints (DESIGN §4.2): HEAD for the offset, PUT a chunk, GET the finished file."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request, send_file

from ..errors import Problem
from ..http import current_actor, problem_response, requires_role
from ..openapi import doc
from . import services

bp = Blueprint("media", __name__, url_prefix="/api/v1/media")


def _upload_response(upload: services.Upload) -> Response:
    resp = jsonify({"sha256": upload.sha256, "offset": upload.offset, "total": upload.total,
                    "complete": upload.complete})
    resp.status_code = upload.status
    resp.headers["Upload-Offset"] = str(upload.offset)
    resp.headers["Upload-Length"] = str(upload.total)
    return resp


@bp.route("/<sha256>", methods=["GET", "HEAD"])
@requires_role("sampler", "official", "admin")
@doc(responses={200: "Complete (GET: the file)", 308: "Partial: Upload-Offset says how much arrived",
                404: "Unknown"})
def get_media(sha256: str):
    """HEAD: how much of a blob arrived (200 complete, 308 + Upload-Offset, 404); GET: the finished file."""
    sha = services.check_sha(sha256)
    actor = current_actor()
    upload = services.blob_status(sha)  # 404 when unknown
    services.may_read(sha, actor)  # 404 when not the caller's to see (HEAD too: it tells the size)
    if request.method == "HEAD" or not upload.complete:
        if request.method == "GET":
            raise Problem(409, "upload_incomplete", "This file has not fully arrived yet.",
                          headers={"Upload-Offset": str(upload.offset)}, offset=upload.offset)
        return _upload_response(upload)
    return send_file(services.storage().path(sha), mimetype="application/octet-stream",
                     download_name=sha, etag=sha, max_age=31536000)


@bp.put("/<sha256>")
@requires_role("sampler")
@doc(body={"type": "string", "format": "binary"}, content_type="application/octet-stream",
     responses={201: "Complete and verified", 200: "Already complete", 308: "Chunk stored; send more",
                409: "Offset mismatch (resume at Upload-Offset)", 413: "Chunk too large",
                422: "hash_mismatch: partial data dropped"})
def put_chunk(sha256: str):
    """Append one chunk (``Content-Range: bytes start-end/total``) at the stored offset."""
    limit = current_app.config["MAX_REQUEST_BYTES"]
    length = request.content_length
    if length is None:
        raise Problem(411, "length_required", "Send Content-Length with each chunk.")
    if length > limit:
        raise Problem(413, "payload_too_large", f"A chunk may be at most {limit} bytes.", max_bytes=limit,
                      preferred_chunk_bytes=current_app.config["PREFERRED_CHUNK_BYTES"])
    sha = services.check_sha(sha256)
    start, end, total = services.parse_content_range(request.headers.get("Content-Range"), length)
    outcome = services.receive_chunk(sha, start, end, total, request.stream, current_actor(), services.storage())
    if isinstance(outcome, Problem):
        return problem_response(outcome)  # committed: the dropped partial upload stays dropped
    return _upload_response(outcome)
