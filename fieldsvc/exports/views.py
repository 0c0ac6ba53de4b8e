"""``GET /api/v1/exports/<resource>.<format>`` (DESIGN §4.9): thin, the rows from the service,
the bytes from the writers. CSV and GeoJSON stream as they are read; XLSX and GeoPackage are
written to a temporary file with constant memory and then streamed from it (both formats are
finished only when their last row is in: a ZIP directory, a SQLite file)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from flask import Blueprint, Response, current_app, stream_with_context

from ..auth.principal import Actor
from ..http import STAFF, current_actor, query_args, requires_role
from ..openapi import doc
from . import services, writers
from .schemas import ExportArgs

bp = Blueprint("exports", __name__, url_prefix="/api/v1/exports")

MEDIA = {"csv": "text/csv; charset=utf-8", "geojson": "application/geo+json",
         "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
         "gpkg": "application/geopackage+sqlite3"}
READ_BYTES = 256 * 1024


@bp.get("/<any(samples,results,grades,certificates):resource>.<any(xlsx,csv,geojson,gpkg):fmt>")
@requires_role(*STAFF)
@doc(query=ExportArgs, responses={200: "The file, streamed", 403: "certificates: officials and admins only",
                                  422: "a filter this resource does not take, or a bad value"})
def export(resource: str, fmt: str):
    """Samples, lab results, parcel grades or certificates for a filter, as XLSX, CSV, GeoJSON or GeoPackage."""
    args = query_args(ExportArgs())
    return export_response(resource, fmt, args, current_actor())


def export_response(resource: str, fmt: str, args: dict, actor: Actor) -> Response:
    """The file as a streamed response (the console's download links call this too)."""
    lang = args.pop("lang", "en")
    rows = services.rows(resource, args, actor)
    columns = services.columns_for(resource)  # samples: one more column per custom question
    name = f"{resource}.{fmt}"
    if fmt == "csv":
        body = stream_with_context(writers.csv_chunks(resource, rows, lang, columns))
    elif fmt == "geojson":
        body = stream_with_context(writers.geojson_chunks(resource, rows, columns))
    else:
        folder = Path(current_app.instance_path) / "exports-tmp"
        folder.mkdir(mode=0o700, exist_ok=True)
        handle, path = tempfile.mkstemp(suffix=f".{fmt}", dir=folder)
        os.close(handle)
        try:
            if fmt == "xlsx":
                writers.write_xlsx(path, resource, rows, lang, tmpdir=str(folder), columns=columns)
            else:
                os.unlink(path)  # GDAL makes the GeoPackage itself
                writers.write_gpkg(path, resource, rows, columns)
        except BaseException:
            Path(path).unlink(missing_ok=True)
            raise
        body = _file_then_delete(path)
    response = Response(body, mimetype=MEDIA[fmt])
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _file_then_delete(path: str) -> Iterator[bytes]:
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(READ_BYTES):
                yield chunk
    finally:
        Path(path).unlink(missing_ok=True)
