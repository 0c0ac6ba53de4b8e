"""``/maps/<file>``: the map library (OpenLayers, installed from the npm registry by ``make install``
with ``package-lock.json``) and our own map script, served from our origin: no CDN at run time."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, send_file

from ..errors import not_found
from ..http import public

ROOT = Path(__file__).resolve().parent.parent.parent
FILES = {
    "ol.js": ROOT / "node_modules" / "ol" / "dist" / "ol.js",
    "ol.css": ROOT / "node_modules" / "ol" / "ol.css",
    "map.js": Path(__file__).resolve().parent / "static" / "map.js",
}

bp = Blueprint("maps", __name__, url_prefix="/maps")


@bp.get("/<name>")
@public
def asset(name: str):
    """One file of the map library or our map script (404 when ``npm ci`` has not run)."""
    path = FILES.get(name)
    if path is None or not path.is_file():
        raise not_found("map asset", name)
    response = send_file(path, conditional=True, max_age=3600)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
