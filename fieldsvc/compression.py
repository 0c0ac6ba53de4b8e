"""gzip for text responses (HTML, JSON, GeoJSON, SVG, CSS, JS, vector tiles) when the client asks.

A small ``after_request`` hook instead of a dependency: it compresses a finished, unstreamed body
of at least ``MIN_BYTES`` when ``Accept-Encoding`` names gzip, sets ``Content-Encoding`` and
``Vary``, and weakens a strong ``ETag`` (the bytes differ from the identity encoding's, RFC 9110
§8.8.3). Streamed bodies (exports, media) and already-encoded ones pass untouched.
"""

from __future__ import annotations

import gzip

from flask import Flask, Response, request

MIN_BYTES = 1024
LEVEL = 6  # zlib's default: most of level 9's ratio at a fraction of its time
TYPES = ("text/html", "application/json", "application/geo+json", "image/svg+xml", "text/css", "text/plain",
         "application/javascript", "text/javascript", "application/vnd.mapbox-vector-tile",
         "application/openapi+json", "application/manifest+json")


def compress(response: Response) -> Response:
    if (response.direct_passthrough or response.is_streamed or response.status_code < 200
            or response.status_code in (204, 206, 304) or "Content-Encoding" in response.headers
            or response.mimetype not in TYPES or request.method == "HEAD"):
        return response
    response.vary.add("Accept-Encoding")
    if request.accept_encodings["gzip"] <= 0:  # (quality 0 when not named; ``*`` counts)
        return response
    body = response.get_data()
    if len(body) < MIN_BYTES:
        return response
    response.set_data(gzip.compress(body, compresslevel=LEVEL, mtime=0))
    response.headers["Content-Encoding"] = "gzip"
    etag, weak = response.get_etag()
    if etag and not weak:
        response.set_etag(etag, weak=True)
    return response


def init_compression(app: Flask) -> None:
    app.after_request(compress)
