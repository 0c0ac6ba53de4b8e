"""Serve the offline field app (``offline_sync/web/``) at ``/field/``.

Every route here is public: it serves only the static app shell. All data goes through the
authenticated sync API with the device token the app keeps in IndexedDB.

The service worker script is served with the shell's content hash written into it, so any
change to any app file changes ``sw.js`` and phones pick up the new version on their next
online visit. Files are sent with ``Cache-Control: no-cache`` (revalidated by ETag); offline
use is the service worker's job, not the HTTP cache's.
"""

from __future__ import annotations

import hashlib
import html
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.security import safe_join

from ..console.views import basemap_source
from ..errors import Problem
from ..http import public
from ..places.models import LAND_USES
from ..samples.services import RULES
from ..samples.validation import SAMPLE_TYPES
from ..tiles.services import COLOURS
from ..tiles.tilemath import MAX_ZOOM

WEB_ROOT = Path(__file__).resolve().parent.parent.parent / "offline_sync" / "web"
MIME_TYPES = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8", ".webmanifest": "application/manifest+json",
    ".json": "application/json", ".png": "image/png", ".svg": "image/svg+xml", ".txt": "text/plain; charset=utf-8",
}
NOT_SHELL = ("sw.js",)  # the worker is not part of the cache it fills
# The map library is served by the maps blueprint (``/maps/``) but belongs to the shell: the map must
# open with no network.
MAP_LIBRARY = ["/maps/ol.js", "/maps/ol.css"]
TILE_LAYERS = ["parcels", "areas", "samples"]  # the data tiles the app draws and keeps offline


def content_security_policy(basemap_url: str) -> str:
    """Our origin only, plus the configured basemap's host (its tiles are images the map draws and, with
    ``FIELDSVC_BASEMAP_OFFLINE=1``, fetches the service worker makes, so both img-src and connect-src)."""
    extra = basemap_source(basemap_url)
    extra = f" {extra}" if extra else ""
    return (f"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:{extra}; "
            f"media-src 'self' blob:; connect-src 'self'{extra}; worker-src 'self' blob:; manifest-src 'self'; "
            "object-src 'none'; base-uri 'self'; frame-ancestors 'none'")


bp = Blueprint("field", __name__, url_prefix="/field")


@lru_cache(maxsize=4)
def shell_files(root: Path = WEB_ROOT) -> tuple[list[str], str]:
    """The servable files (relative paths) and a hash over their names and bytes."""
    digest = hashlib.sha256()
    files = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in MIME_TYPES):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(".") or "/." in rel:
            continue
        digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
        if rel not in NOT_SHELL:
            files.append(rel)
    return files, digest.hexdigest()[:16]


def _shell() -> tuple[list[str], str]:
    if current_app.debug:  # edit-and-reload during development
        shell_files.cache_clear()
    return shell_files()


def _headers(resp: Response) -> Response:
    resp.headers["Cache-Control"] = "no-cache"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Content-Security-Policy"] = content_security_policy(current_app.config["BASEMAP_URL"])
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp


@bp.get("/")
@public
def index():
    """The app shell (a page; the provisioning link's fragment is read by the app, never sent here)."""
    return _send("index.html")


@bp.get("/sw.js")
@public
def service_worker():
    """The service worker, with this shell's version and file list written in."""
    files, version = _shell()
    text = (WEB_ROOT / "sw.js").read_text(encoding="utf-8")
    text = text.replace('const VERSION = "dev";', f'const VERSION = "{version}";', 1)
    shell = json.dumps(["./", "config.json", *files, *MAP_LIBRARY])
    text = text.replace("const SHELL = [];", f"const SHELL = {shell};", 1)
    resp = Response(text, mimetype="text/javascript")
    resp.headers["Service-Worker-Allowed"] = "/field/"
    resp.set_etag(hashlib.sha256(text.encode()).hexdigest()[:32])
    return _headers(resp.make_conditional(request))


@bp.get("/config.json")
@public
def app_config():
    """What the app needs before it has a token: code lists, photo size, the GPS accuracy threshold."""
    cfg = current_app.config
    _files, version = _shell()
    resp = current_app.response_class(json.dumps({
        "version": version, "land_uses": list(LAND_USES), "sample_types": list(SAMPLE_TYPES),
        "photo_max_px": cfg["FIELD_PHOTO_MAX_PX"], "photo_quality": cfg["FIELD_PHOTO_QUALITY_PCT"] / 100,
        "low_accuracy_m": RULES.low_accuracy_m, "depth_max_cm": RULES.depth_max_cm,
        "max_media": RULES.max_media, "sync_interval_s": cfg["FIELD_SYNC_INTERVAL_S"],
        "map": map_config(cfg),
    }, ensure_ascii=False), mimetype="application/json")
    return _headers(resp)


def map_config(cfg: Any) -> dict[str, Any]:
    """The map's settings: where tiles are, the basemap (None: a plain background), the colours, and
    what the service worker keeps offline (zooms clamped to the tile server's 0-20, bounds at least 1)."""
    low = min(max(int(cfg["FIELD_TILE_MIN_ZOOM"]), 0), MAX_ZOOM)
    high = min(max(int(cfg["FIELD_TILE_MAX_ZOOM"]), low), MAX_ZOOM)
    basemap = ({"url": cfg["BASEMAP_URL"], "attribution": cfg["BASEMAP_ATTRIBUTION"],
                "offline": bool(cfg["BASEMAP_OFFLINE"])} if cfg["BASEMAP_URL"] else None)
    return {"tiles": "/tiles", "layers": TILE_LAYERS, "basemap": basemap, "colours": COLOURS,
            "offline": {"min_zoom": low, "max_zoom": high, "max_tiles": max(1, int(cfg["FIELD_TILE_MAX_COUNT"])),
                        "max_bytes": max(1024, int(float(cfg["FIELD_TILE_MAX_MB"]) * 1024 * 1024))}}


@bp.get("/<path:filename>")
@public
def asset(filename: str):
    """One file of the app (scripts, styles, icons, the manifest)."""
    return _send(filename)


def _send(filename: str) -> Response:
    """The file's bytes (all are small), revalidated by ETag; read whole so no file handle outlives the request."""
    suffix = Path(filename).suffix
    path = safe_join(str(WEB_ROOT), filename)
    if suffix not in MIME_TYPES or filename.startswith(".") or "/." in filename or path is None:
        raise NotFound()
    try:
        data = Path(path).read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise NotFound() from None
    resp = Response(data, content_type=MIME_TYPES[suffix])
    resp.set_etag(hashlib.sha256(data).hexdigest()[:32])
    return _headers(resp.make_conditional(request))


ERROR_PAGE = """<!doctype html><html lang="zh"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{status}</title></head>
<body><h1>{status}</h1><p>{message}</p><p><a href="/field/">采样 · Field app</a></p></body></html>"""


def _error_page(status: int, message: str) -> Response:
    resp = Response(ERROR_PAGE.format(status=status, message=html.escape(message)), status=status,
                    mimetype="text/html")
    return _headers(resp)


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    """The field app's pages answer errors with an HTML page of the same status (DESIGN §4)."""
    return _error_page(exc.code or 500, exc.description or exc.name)


@bp.errorhandler(Problem)
def _problem(exc: Problem) -> Response:
    return _error_page(exc.status, exc.message)
