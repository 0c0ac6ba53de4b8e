"""``GET /tiles/<layer>/<z>/<x>/<y>.mvt`` (DESIGN §4.8): thin, as every view.

The caller is whoever ``current_actor`` finds: a bearer or device token, or the console's
session cookie (tiles are read-only, so the cookie is accepted here as on console pages). The
``ETag`` is the digest of the tile's bytes, so it changes exactly when what the tile shows does;
``Cache-Control: private, no-cache`` lets the browser keep a tile but revalidate it each time
(a 304 costs no transfer).
"""

from __future__ import annotations

import hashlib

from flask import Blueprint, Response, current_app, request

from ..http import ALL_ROLES, current_actor, requires_role
from . import services
from .tilemath import MAX_ZOOM, parse_tile

bp = Blueprint("tiles", __name__, url_prefix="/tiles")
MIME = "application/vnd.mapbox-vector-tile"


@bp.get("/<layer>/<z>/<x>/<y>.mvt")
@requires_role(*ALL_ROLES)
def tile(layer: str, z: str, x: str, y: str):
    """One vector tile of ``parcels``, ``samples``, ``areas`` or ``planned``, scoped to the caller."""
    parsed = parse_tile(z, x, y)
    if parsed.z > MAX_ZOOM or layer not in services.LAYERS:
        services.render(layer, parsed, current_actor(), max_bytes=0)  # raises the 404
    data = services.render(layer, parsed, current_actor(), max_bytes=current_app.config["TILE_MAX_BYTES"])
    etag = hashlib.sha256(layer.encode() + b"\0" + data).hexdigest()[:32]
    headers = {"ETag": f'"{etag}"', "Cache-Control": "private, no-cache", "Vary": "Authorization, Cookie",
               "X-Content-Type-Options": "nosniff"}
    if etag in request.if_none_match:
        return Response(status=304, headers=headers)
    return Response(data, mimetype=MIME, headers=headers)
