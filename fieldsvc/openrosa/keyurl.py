"""Token URLs for ODK Collect (as ODK Central's app users): ``/key/<device token>/formList`` etc.

Collect sends no bearer token; with the token in its server URL it needs no password. This WSGI
middleware moves the token out of the path before anything sees it: ``PATH_INFO`` loses the
``/key/<token>`` prefix (so routing, metrics and the JSON access log see ``/formList``), the
token goes to ``environ[KEY_ENVIRON]`` for the OpenRosa views alone (``views.openrosa_auth``),
and ``RAW_URI``/``REQUEST_URI`` (what gunicorn's access log prints) carry ``/key/***/...``.
Only the OpenRosa paths answer under ``/key/``; anything else there is a 404, so the key never
authenticates the JSON API.
"""

from __future__ import annotations

import re
from typing import Any

KEY_ENVIRON = "fieldsvc.collect_key"
KEY_PREFIX_ENVIRON = "fieldsvc.collect_key_prefix"
REDACTED = "***"
_KEYED = re.compile(r"/key/([^/]*)(/.*)?\Z", re.DOTALL)
_OPENROSA = re.compile(r"/(?:formList|submission|forms/[^/]+\.xml|forms/[^/]+/manifest|forms/[^/]+/media/[^/]+)\Z")


class KeyUrls:
    def __init__(self, wsgi_app: Any) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/key/"):
            match = _KEYED.match(path)
            token, rest = (match.group(1), match.group(2) or "/") if match else ("", "/")
            environ[KEY_ENVIRON] = token
            environ[KEY_PREFIX_ENVIRON] = f"/key/{token}"
            # an unknown path under /key/ routes nowhere (404), whatever it names
            environ["PATH_INFO"] = rest if _OPENROSA.match(rest) else "/key/" + REDACTED + rest
            for name in ("RAW_URI", "REQUEST_URI"):
                if name in environ:
                    environ[name] = redact(environ[name])
        return self.wsgi_app(environ, start_response)


def redact(uri: str) -> str:
    """``/key/<token>/x?y`` → ``/key/***/x?y`` (for logs)."""
    return re.sub(r"^(/key/)[^/?]*", r"\g<1>" + REDACTED, uri)
