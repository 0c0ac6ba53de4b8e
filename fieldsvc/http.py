"""The HTTP edge: roles, the transaction per request, JSON bodies, pagination, one error shape."""

from __future__ import annotations

import functools
import json
import logging
import re
from typing import Any, Callable, Mapping

import orjson
from flask import Flask, Response, current_app, g, jsonify, request, session
from marshmallow import Schema, ValidationError
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from .auth.principal import Actor
from .auth.services import record_device_seen, resolve_bearer
from .errors import Problem, forbidden, unauthorized, unavailable, validation_failed
from .extensions import db
from .paging import Page, decode_cursor, encode_cursor, paginate  # noqa: F401 (re-exported)

log = logging.getLogger("fieldsvc.http")

ALL_ROLES = ("admin", "official", "lab", "sampler")
OFFICIALS = ("official", "admin")
STAFF = ("admin", "official", "lab")
PUBLIC = ("public",)
SESSION_BLUEPRINTS = ("console", "tiles")  # where the console's session cookie signs in (tiles: read-only)

HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 410: "gone",
    411: "length_required", 413: "payload_too_large", 415: "unsupported_media_type",
    416: "range_not_satisfiable", 422: "validation_failed", 429: "rate_limited",
    500: "internal_error", 503: "unavailable",
}


# --- ids in URLs -----------------------------------------------------------------------------

class IdConverter(IntegerConverter):
    """``<int:...>`` in every route: a number no id column can hold is no route, so a 404.

    Integer ids are 32-bit on PostgreSQL and 64-bit on SQLite; past 2^31 - 1 the database answered
    a 500 (SQLite overflow) or a 422 (PostgreSQL) for what is simply a thing that does not exist.
    """

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:  # noqa: A002 (werkzeug's name)
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(map, *args, **kwargs)


# --- roles and the transaction boundary -------------------------------------------------

def _transactional(view: Callable, roles: tuple[str, ...]) -> Callable:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any):
        if roles != PUBLIC:
            actor = current_actor()
            if actor.role not in roles:
                raise forbidden(f"This needs one of the roles: {', '.join(roles)}.")
        try:
            result = view(*args, **kwargs)
            db.session.commit()
            return result
        except BaseException:
            db.session.rollback()
            raise

    wrapper.fieldsvc_roles = roles  # the URL-map test reads this
    return wrapper


def requires_role(*roles: str) -> Callable[[Callable], Callable]:
    """Declare who may call a route; also makes the route one transaction."""
    if not roles or any(r not in ALL_ROLES for r in roles):
        raise ValueError(f"unknown roles {roles!r}")
    return lambda view: _transactional(view, tuple(roles))


def public(view: Callable) -> Callable:
    """Declare a route open to anyone (consumers, health checks)."""
    return _transactional(view, PUBLIC)


def current_actor() -> Actor:
    """The authenticated caller; 401 when there is none."""
    actor = g.get("actor")
    if actor is None:
        header = request.headers.get("Authorization", "")
        if not header and request.blueprint in SESSION_BLUEPRINTS:
            # Console pages (and the map tiles they draw) sign in with the signed Flask session
            # instead of a header. The session holds an ordinary API token (fieldsvc/console/auth.py),
            # so expiry, logout (revocation) and disabled accounts are judged exactly as for the API.
            header = f"Bearer {session.get('token') or ''}"
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized()
        actor = authenticate_token(token.strip())
        g.actor = actor
    return actor


def authenticate_token(token: str) -> Actor:
    """The actor of a bearer (or OpenRosa key) token; a device's ``last_seen_at``, when due, is
    recorded when the request ends, outside its transaction. :raise 401: see ``resolve_bearer``."""
    actor, seen_due = resolve_bearer(token)
    if seen_due and actor.device_pk is not None:
        _after_response(_record_seen, actor.device_pk)
    return actor


def _after_response(fn: Callable[..., Any], *args: Any) -> None:
    """Run ``fn(*args)`` when the request ends, after its transaction (at most once per request)."""
    pending = g.setdefault("fieldsvc_after_response", [])
    if (fn, args) not in pending:
        pending.append((fn, args))


def _run_after_response(_exc: BaseException | None) -> None:
    for fn, args in g.pop("fieldsvc_after_response", None) or ():
        fn(*args)


def _record_seen(device_pk: int) -> None:
    record_device_seen(device_pk, current_app.config["SQLITE_BUSY_TIMEOUT_MS"])


# --- request bodies and query strings -----------------------------------------------------

def json_body(max_bytes: int | None = None) -> Any:
    """The parsed JSON body: 415 for another media type, 413 when too big, 400 when malformed."""
    if not request.mimetype or request.mimetype != "application/json" and not request.mimetype.endswith("+json"):
        raise Problem(415, "unsupported_media_type", "Send the body as application/json.")
    limit = max_bytes or current_app.config["MAX_JSON_BYTES"]
    if request.content_length is not None and request.content_length > limit:
        raise Problem(413, "payload_too_large", f"The body is larger than {limit} bytes.", max_bytes=limit)
    raw = request.get_data(cache=True)
    if len(raw) > limit:
        raise Problem(413, "payload_too_large", f"The body is larger than {limit} bytes.", max_bytes=limit)
    _check_depth(raw, current_app.config["MAX_JSON_DEPTH"])
    if b"\\u0000" in raw:  # PostgreSQL text cannot hold NUL, and no field of ours needs it
        raise validation_failed({"_body": ["text must not contain NUL (\\u0000) characters"]})
    try:
        return orjson.loads(raw)  # 2-3x faster; it refuses a few things the standard parser takes
    except orjson.JSONDecodeError:
        pass  # (integers past 64 bits, lone surrogates, 1e400): the standard parser decides, as before
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Problem(400, "malformed_json", f"The body is not valid JSON: {exc}") from None
    try:  # (only here, on the rare bodies orjson refused) a lone surrogate escape cannot be stored
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise validation_failed({"_body": ["text must be valid Unicode (a lone surrogate escape such as "
                                           "\\ud800 is not)"]}) from None
    return body


_ESCAPE = re.compile(rb"\\.", re.S)
_EMPTY_PAIR = re.compile(rb"\[\]|\{\}")
_NOT_QUOTE_OR_BRACKET = bytes(b for b in range(256) if b not in b'"[]{}')


def json_depth_exceeds(raw: bytes, limit: int) -> bool:
    """True when the JSON text nests arrays/objects deeper than ``limit``, found before parsing.

    A parser recurses once per level (Python's ``json`` overflows the C stack guard at about a
    thousand: a 2 KB body made a 500 and a traceback per request), and so do the encoders that
    store what was parsed. Strings (with their escapes) are removed, every other byte but the
    brackets dropped, and innermost ``[]``/``{}`` pairs peeled off one level per pass, all at C
    speed: a 30 MB GeoJSON costs ~0.1 s. Unbalanced text stops early and is left to the parser.
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    if b"\\" in raw:
        raw = _ESCAPE.sub(b"", raw)
    # strings hold no unescaped quote: the text between the 2nd and 3rd, 4th and 5th … quote is
    # inside strings. Only quotes and brackets are kept first (one C pass): the split then cuts a few
    # KB instead of a 200 KB push body (0.7 ms a push of 500 records instead of 1.0)
    parts = raw.translate(None, _NOT_QUOTE_OR_BRACKET).split(b'"')
    outside = parts[::2] if len(parts) % 2 else [*parts[::2], parts[-1]]  # (an unpaired quote: keep its tail)
    brackets = b"".join(outside)
    for _level in range(limit):
        if not brackets:
            return False
        peeled = _EMPTY_PAIR.sub(b"", brackets)
        if len(peeled) == len(brackets):
            return False  # not balanced: malformed, and the parser says so
        brackets = peeled
    return bool(brackets)


def _check_depth(raw: bytes, limit: int) -> None:
    if json_depth_exceeds(raw, limit):
        raise Problem(400, "json_too_deep", f"The JSON nests arrays or objects deeper than {limit} levels.",
                      max_depth=limit)


def if_match_version(entity: str) -> int | None:
    """The version number an ``If-Match`` header names (``3``, ``"3"``, ``W/"3"``), or None."""
    raw = request.headers.get("If-Match", "").strip().strip('"').removeprefix("W/").strip('"')
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 10:
        raise validation_failed({"If-Match": [f"must be the {entity}'s version number"]})
    return int(raw)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed in JSON")


def load(schema: Schema, data: Any, **kwargs: Any) -> Any:
    """marshmallow at the edge; a non-object body is named as such."""
    if not isinstance(data, Mapping) and not kwargs.get("many"):
        raise validation_failed({"_body": ["must be a JSON object"]})
    return schema.load(data, **kwargs)


def query_args(schema: Schema) -> dict[str, Any]:
    return schema.load(request.args.to_dict(flat=True))


# --- pagination: ``paging`` (core, no Flask), re-exported for the views ----------------------

# --- the rest of a body answered early -------------------------------------------------------

DRAIN_BLOCK = 64 * 1024


def finish_request_body(response: Response) -> Response:
    """Read what is left of a request body the view answered before reading (a media PUT refused
    with 409 for a gap, a 401, a 415), so the keep-alive connection's next request starts where the
    client thinks it does; the client's next request stalled ~2 s and was reset. A body past
    ``MAX_REQUEST_BYTES`` (a 413) is not read: the answer says ``Connection: close`` and the server
    closes the connection after it.
    """
    length = request.content_length
    if not length:
        return response
    try:
        stream = request.stream
    except HTTPException:  # (werkzeug refuses to open a stream past MAX_CONTENT_LENGTH)
        response.headers["Connection"] = "close"
        return response
    if getattr(stream, "is_exhausted", True):
        return response
    if length - stream.tell() > current_app.config["MAX_REQUEST_BYTES"]:
        response.headers["Connection"] = "close"
        return response
    try:
        while stream.read(DRAIN_BLOCK):
            pass
    except (OSError, HTTPException):  # the client went away, or sent less than it announced
        response.headers["Connection"] = "close"
    return response


# --- one error shape ------------------------------------------------------------------------

def problem_response(problem: Problem) -> Response:
    response = jsonify(problem.to_dict())
    response.status_code = problem.status
    for name, value in problem.headers.items():
        response.headers[name] = value
    return response


def _from_http_exception(exc: HTTPException) -> Problem:
    status = exc.code or 500
    details: dict[str, Any] = {}
    if status == 413:
        details["max_bytes"] = current_app.config.get("MAX_CONTENT_LENGTH")
    if status == 405 and getattr(exc, "valid_methods", None):
        details["allowed"] = sorted(exc.valid_methods)
    message = exc.description or exc.name
    problem = Problem(status, HTTP_CODES.get(status, "http_error"), message, **details)
    if status == 405 and getattr(exc, "valid_methods", None):
        problem.headers["Allow"] = ", ".join(sorted(exc.valid_methods))
    return problem


def _is_busy(exc: OperationalError) -> bool:
    text = str(exc.orig).lower() if exc.orig else str(exc).lower()
    return any(s in text for s in ("database is locked", "database is busy", "could not serialize",
                                   "deadlock detected", "lock timeout", "could not obtain lock"))


def register_error_renderer(app: Flask, blueprint: str, renderer: Callable[[Problem], Response]) -> None:
    """Errors under ``blueprint`` render with ``renderer`` (an HTML page, an OpenRosa XML response)."""
    app.extensions.setdefault("fieldsvc_error_renderers", {})[blueprint] = renderer


def _blueprint_by_prefix(app: Flask, names: Any) -> str | None:
    """When routing failed (404/405) Flask knows no blueprint: fall back on the URL prefix."""
    for name in names:
        prefix = getattr(app.blueprints.get(name), "url_prefix", None)
        if prefix and (request.path == prefix or request.path.startswith(prefix.rstrip("/") + "/")):
            return name
    return None


def register_error_handlers(app: Flask) -> None:
    def render(problem: Problem) -> Response:
        renderers = app.extensions.get("fieldsvc_error_renderers", {})
        renderer = renderers.get(getattr(request, "blueprint", None) or _blueprint_by_prefix(app, renderers))
        return renderer(problem) if renderer is not None else problem_response(problem)

    @app.errorhandler(Problem)
    def _problem(exc: Problem):
        return render(exc)

    @app.errorhandler(ValidationError)
    def _validation(exc: ValidationError):
        messages = exc.messages if isinstance(exc.messages, dict) else {"_body": exc.messages}
        return render(validation_failed(messages))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        return render(_from_http_exception(exc))

    @app.errorhandler(IntegrityError)
    def _integrity(exc: IntegrityError):
        db.session.rollback()
        constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None) or str(exc.orig)
        return render(Problem(409, "integrity_conflict", "The change conflicts with stored data.",
                              constraint=constraint))

    app.after_request(finish_request_body)
    app.teardown_request(_run_after_response)

    @app.before_request
    def _refuse_nul() -> None:
        if "\x00" in request.path or b"%00" in request.query_string or b"\x00" in request.query_string:
            raise Problem(400, "invalid_characters", "The URL must not contain NUL characters.")

    @app.errorhandler(DataError)
    def _data_error(exc: DataError):
        db.session.rollback()
        log.warning("database refused a value: %s", str(exc.orig).splitlines()[0] if exc.orig else exc)
        return render(Problem(422, "invalid_value", "A value was refused by the database (out of range or "
                                                    "not representable)."))

    @app.errorhandler(OperationalError)
    def _operational(exc: OperationalError):
        db.session.rollback()
        if _is_busy(exc):
            return render(unavailable(1))
        if app.testing:
            raise exc
        log.exception("database error")
        return render(Problem(500, "internal_error", "Internal error."))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if app.testing and not app.config.get("SWALLOW_ERRORS"):
            raise exc
        log.exception("unhandled error")
        return render(Problem(500, "internal_error", "Internal error; it has been logged."))
