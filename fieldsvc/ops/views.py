"""Health, metrics, the OpenAPI document and its local viewer."""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle
from flask import Blueprint, Response, current_app, redirect, send_from_directory
from sqlalchemy import text

from .. import __version__
from ..extensions import db
from ..http import public
from ..openapi import build_spec
from .observability import metrics_text

bp = Blueprint("ops", __name__)

SWAGGER_DIR = Path(swagger_ui_bundle.swagger_ui_path)
DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fieldsvc API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script>
</body></html>"""


FAVICON = (Path(__file__).parent / "static" / "favicon.ico").read_bytes()  # 1.3 KB, read once


@bp.get("/")
@public
def root():
    """The service's front door is the console (officials sign in there; lab staff too)."""
    return redirect("/console/", code=302)


@bp.get("/favicon.ico")
@public
def favicon():
    """The icon browsers ask for (served with a day's caching)."""
    response = Response(FAVICON, mimetype="image/vnd.microsoft.icon")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


@bp.get("/healthz")
@public
def healthz():
    """Liveness and the database engine in use."""
    db.session.execute(text("SELECT 1"))
    return {"status": "ok", "database": db.session.get_bind().dialect.name, "version": __version__}


@bp.get("/metrics")
@public
def metrics():
    """Prometheus text: request counts and latencies by endpoint."""
    return Response(metrics_text(), mimetype="text/plain; version=0.0.4")


@bp.get("/openapi.json")
@public
def openapi():
    """The OpenAPI 3 document for every endpoint."""
    spec = current_app.extensions.get("fieldsvc_openapi")
    if spec is None:
        spec = current_app.extensions["fieldsvc_openapi"] = build_spec(current_app, __version__)
    return spec


@bp.get("/docs")
@public
def docs():
    """The API viewer (Swagger UI, served from the installed package, no CDN)."""
    return Response(DOCS_PAGE, mimetype="text/html")


@bp.get("/docs/static/<path:filename>")
@public
def docs_static(filename: str):
    """Swagger UI's files."""
    return send_from_directory(SWAGGER_DIR, filename)
