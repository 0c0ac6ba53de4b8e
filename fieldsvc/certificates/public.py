"""Public verification (no login): the scan page ``/C/<CODE>``, its JSON twin, offline tokens, public keys.

Unknown and malformed codes take the same path (one lookup of the same shape) and get the same
page, so the page tells nothing about which codes exist. Every request counts against its
address (hashed) in the database-backed limiter, so all app processes share the limit.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, current_app, render_template, request
from markupsafe import Markup
from marshmallow import ValidationError

from ..errors import Problem, not_found, validation_failed
from ..http import json_body, load, problem_response, public, register_error_renderer
from ..lru import LRU
from ..openapi import doc
from . import codes, i18n, issuer, services
from .schemas import TokenIn
from .signing import MAX_TOKEN_CHARS, public_keys_document

bp = Blueprint("certificates_public", __name__, template_folder="templates")
api_bp = Blueprint("verify", __name__)

HTML_HEADERS = {
    "Cache-Control": "no-store",
    "Vary": "Accept-Language",
    "X-Robots-Tag": "noindex",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; "
                               "form-action 'none'; frame-ancestors 'none'",
}
TOKEN_BODY_BYTES = MAX_TOKEN_CHARS + 512


@bp.record_once
def _html_errors(state: Any) -> None:
    """Errors under this blueprint answer with an HTML page of the same status (see ``http.py``)."""
    app: Flask = state.app
    register_error_renderer(app, bp.name, render_problem_page)
    app.wsgi_app = _UppercaseScanPath(app.wsgi_app)  # type: ignore[method-assign]


class _UppercaseScanPath:
    """``/c/<code>`` is ``/C/<code>``: some scanners and people lowercase the whole URL."""

    def __init__(self, wsgi_app: Any) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/c/"):
            environ["PATH_INFO"] = "/C/" + path[3:]
        return self.wsgi_app(environ, start_response)


def _lang() -> str:
    return i18n.negotiate(request.headers.get("Accept-Language"), request.args.get("lang"))


def _html(body: str, status: int, headers: dict[str, str] | None = None) -> Response:
    response = Response(body, status=status, mimetype="text/html")
    response.headers.update(HTML_HEADERS)
    response.headers.update(headers or {})
    return response


@bp.get("/C/<code>")
@public
@doc(responses={200: "The certificate's public page", 404: "The same 'cannot verify' page for any unknown code",
                429: "Too many requests from this address"}, content_type="text/html")
def page(code: str):
    """The page a label's QR opens: genuine or not, status, village-level place, grade, standard."""
    config = current_app.config
    lang = _lang()
    scan = services.scan(code, None, request.remote_addr, request.user_agent.string, config)
    if scan is None:
        return _unknown_page(lang)
    body, status = _certificate_page(scan.cert, lang, config)
    return _html(body.replace(SERIAL_SLOT, "", 1), status)


@bp.get("/C/<code>/<serial>")
@public
@doc(responses={200: "One printed label's page: the certificate's page with when this label was first "
                     "checked and how often", 404: "The same 'cannot verify' page for any unknown code or serial "
                     "(a wrong check character too)", 429: "Too many requests from this address"},
     content_type="text/html")
def serial_page(code: str, serial: str):
    """The page a serialised label's QR opens; warns past a configured count or spread of checks."""
    config = current_app.config
    lang = _lang()
    scan = services.scan(code, serial, request.remote_addr, request.user_agent.string, config)
    if scan is None:
        return _unknown_page(lang)
    body, status = _certificate_page(scan.cert, lang, config)
    serial = {**scan.serial_status, "text": scan.serial,
              "first_on": (scan.serial_status["first_checked_at"] or "")[:10]}
    section = render_template("certificates/serial.html", t=i18n.STRINGS[lang], serial=serial)
    return _html(body.replace(SERIAL_SLOT, section, 1), status)


def _unknown_page(lang: str) -> Response:
    """The same page for any unknown or malformed code or serial (``services.scan`` counted it against
    the address too: no free enumeration)."""
    return _html(render_template("certificates/public.html", lang=lang, t=i18n.STRINGS[lang],
                                 state="unknown", cert=None), 404)


SERIAL_SLOT = "<!--serial-->"  # where a serialised label's own section goes into its certificate's page
PAGE_CACHE_SIZE = 1024  # pages kept per app (a few kB each), the least recently scanned dropped first
_PAGE_COLUMNS = ("id", "code", "kind", "subject_type", "subject_code", "snapshot_json", "issued_at", "valid_until",
                 "status", "reason", "revoked_at", "replaced_by", "token", "key_id")


def _certificate_page(cert: Any, lang: str, config: Any) -> tuple[str, int]:
    """A certificate's page (with ``SERIAL_SLOT`` for a label's section) and its HTTP status.

    A certificate's page is a function of its stored row, the status now, whether its signature
    checks and the language, so it is rendered once per app for each of those (the key holds every
    column the page reads: a revocation, a supersession, an expiry or a new key ring is a new key,
    never a stale page). A land label's page shows grades as of now, read live: it is built on
    every scan. Building the context and rendering it measured 0.1-0.3 ms a scan in process, with
    ``bench/certificates.py``'s certificates.
    """
    if cert.kind == "land_label":
        return _render_page(cert, lang, config)
    status, genuine = services.public_status(cert, config)
    key = (lang, status, genuine, *(getattr(cert, c) for c in _PAGE_COLUMNS))
    pages = current_app.extensions.setdefault("fieldsvc_public_pages", LRU(PAGE_CACHE_SIZE))
    page = pages.get(key)
    if page is None:
        page = _render_page(cert, lang, config)
        pages.put(key, page)
    return page


def _render_page(cert: Any, lang: str, config: Any) -> tuple[str, int]:
    context = _page_context(cert, lang, config)
    return (render_template("certificates/public.html", serial_slot=Markup(SERIAL_SLOT), **context),
            200 if context["state"] != "unknown" else 404)


def _page_context(cert: Any, lang: str, config: Any) -> dict[str, Any]:
    body = services.verification(cert, config)
    state = body["status"] if body["genuine"] else "unknown"
    snap = body["grade"]
    context = {
        "lang": lang, "t": i18n.STRINGS[lang], "state": state, "cert": body,
        "code": codes.format_code(cert.code),
        "subject_kind": i18n.STRINGS[lang].get(cert.subject_type, cert.subject_type),
        "place": " · ".join(p for p in (body["subject"]["place_en" if lang == "en" else "place"].get(k) for k in
                                        ("county", "township", "village", "farm_park")) if p),
        "grade": i18n.grade_label(snap["grade"], lang),
        "pack": snap["rule_pack"] or {},
        "standard": snap["standard"],
        "tested_on": snap["tested_on"],
        "valid_until": (body["valid_until"] or "")[:10],
        "issued": (body["issued_at"] or "")[:10],
        "revoked_on": (body["revoked_at"] or "")[:10],
        "replacement_path": f"/C/{cert.replaced_by}" if cert.replaced_by else None,
        "issuer": body.get("issuer"),
        "kind": cert.kind,
        "outline": services.snapshot(cert).get("outline"),
        "subject_name": _subject_name(body, lang),
    }
    if cert.kind == "land_label":
        context.update(_land_context(body, lang, context["subject_kind"]))
    return context


def _subject_name(body: dict[str, Any], lang: str) -> str:
    """A village's or park's name in the page's language (a parcel is named by its code)."""
    subject = body["subject"]
    if lang == "en" and subject["type"] in ("village", "farm_park"):
        return subject["place_en"].get(subject["type"]) or subject["name"]
    return subject["name"]


BAR_SCALE = 1.5  # a bar spans 0 to 1.5 × the limit; the limit mark sits at two thirds


def _number(text: Any) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _land_context(body: dict[str, Any], lang: str, subject_kind: str) -> dict[str, Any]:
    """A land label's page: the sentence first, conclusions in words, a bar per element, since when."""
    conclusions = [{
        "topic": i18n.STANDARD_TOPICS[lang].get(c["pack"], c["standard"]), "standard": c["standard"],
        "verdict": i18n.VERDICTS[lang].get(c["verdict"], c["verdict"]), "ok": c["verdict"] == "meets",
        # needs sampling / not assessed: grey, never the failing colour
        "open": c["verdict"] in ("needs_sampling", "not_assessed", "not_graded"),
        "grade": i18n.grade_label(c.get("grade"), lang) if c.get("grade") else "",
        "basis": i18n.basis_words(c, lang),
        "failing": [i18n.analyte_name(a, lang) for a in c.get("failing") or []],
    } for c in body.get("conclusions") or []]
    elements = []
    for e in body.get("elements") or []:
        value, limit = _number(e.get("value")), _number(e.get("limit"))
        if limit is None or limit <= 0:
            continue
        shown = e.get("value") if e.get("qualifier", "=") == "=" else f"<{e.get('detection_limit') or ''}".rstrip("<")
        ratio = (value or 0.0) / limit
        minimum = e.get("bound") == "min"  # a threshold to reach (Se-rich): past it is good
        over = e.get("verdict") in ("exceeds", "fail") if minimum else ratio > 1
        basis = e.get("basis") or "measured"
        elements.append({"name": i18n.analyte_name(e["analyte"], lang), "analyte": e["analyte"],
                         "value": shown or "—", "limit": e.get("limit"), "unit": e.get("unit") or "",
                         "pct": round(min(ratio, BAR_SCALE) / BAR_SCALE * 100, 1), "over": over,
                         "minimum": minimum, "estimated": basis == "estimated",
                         "basis": i18n.BASES[lang].get(basis, basis), "sigma": e.get("sigma")})
    history = [{"on": (h["at"] or "")[:10], "verdict": i18n.VERDICTS[lang].get(h["verdict"], h["verdict"]),
                "grade": i18n.grade_label(h.get("grade"), lang) if h.get("grade") else ""}
               for h in body.get("history") or []]
    return {"sentence": i18n.conclusion_sentence(body.get("conclusion"), subject_kind, lang),
            "head_ok": (body.get("conclusion") or {}).get("verdict") == "meets",
            "conclusions": conclusions, "elements": elements, "limit_pct": round(100 / BAR_SCALE, 1),
            "since": (body.get("since") or "")[:10], "as_of": (body.get("as_of") or "")[:10],
            "history": history[1:], "land_tested_on": body.get("tested_on") or ""}


def render_problem_page(problem: Problem) -> Response:
    lang = _lang()
    t = i18n.STRINGS[lang]
    title, detail = ((t["error_429"], t["error_429_detail"]) if problem.status == 429 else
                     (t["unknown"], t["unknown_detail"]) if problem.status == 404 else (t["error"], t["error_detail"]))
    body = render_template("certificates/error.html", lang=lang, t=t, title=title, detail=detail,
                           status=problem.status)
    return _html(body, problem.status, problem.headers)


@api_bp.get("/api/v1/verify/<code>")
@public
@doc(responses={200: "{genuine, status, reason, replaced_by, valid_until, subject, grade, claims, signature, "
                     "key_id}", 404: "No such certificate", 429: "Too many requests"})
def verify_code(code: str):
    """The public page as JSON."""
    config = current_app.config
    scan = services.scan(code, None, request.remote_addr, request.user_agent.string, config)
    if scan is None:
        return problem_response(not_found("certificate", "code"))  # the limiter's count is kept
    return services.verification(scan.cert, config)


@api_bp.get("/api/v1/verify/<code>/<serial>")
@public
@doc(responses={200: "The verify JSON with serial: {serial, first_checked_at, checks, days, warning}",
                404: "No such certificate or serial (a wrong check character too)", 429: "Too many requests"})
def verify_serial(code: str, serial: str):
    """One printed label as JSON; counts as a check of that label."""
    config = current_app.config
    scan = services.scan(code, serial, request.remote_addr, request.user_agent.string, config)
    if scan is None:
        return problem_response(not_found("certificate", "code"))  # the limiter's count is kept
    body = services.verification(scan.cert, config)
    body["serial"] = {"serial": scan.serial, **scan.serial_status}
    return body


@api_bp.post("/api/v1/verify/token")
@public
@doc(body=TokenIn, responses={200: "{genuine: true, status, claims}", 400: "malformed",
                              422: "invalid_signature or unknown_issuer_key", 413: "Body too large"})
def verify_token():
    """Check the signed token from a certificate's second QR code (what an offline verifier does)."""
    config = current_app.config
    services.check_rate(request.remote_addr, config)
    try:
        data = load(TokenIn(), json_body(TOKEN_BODY_BYTES))
        return services.verify_offline_token(data["token"], config)
    except ValidationError as exc:
        return problem_response(validation_failed(exc.messages if isinstance(exc.messages, dict) else
                                                  {"_body": exc.messages}))
    except Problem as problem:
        return problem_response(problem)  # a refusal is not a rollback: the limiter's count is kept


@api_bp.get("/.well-known/fieldsvc-keys.json")
@public
def public_keys():
    """Every public key that verifies certificates: the current one and retired ones."""
    rows = issuer.all_issuers()
    current = issuer.issuer_dict(rows[0]) if rows else None
    document = public_keys_document(services.keyring(current_app.config), current,
                                    [issuer.issuer_dict(r) for r in rows])
    response = current_app.json.response(document)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@api_bp.get("/.well-known/fieldsvc-issuer-seal/<int:version>.png")
@public
@doc(responses={200: "The issuer's seal (PNG) of that identity version", 404: "No such version or no seal"},
     content_type="image/png")
def issuer_seal(version: int):
    """The seal image the public page and certificates show; a version never changes, so it caches long."""
    response = Response(issuer.seal_png(version), mimetype="image/png")
    response.headers["Cache-Control"] = "public, max-age=86400, immutable"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
