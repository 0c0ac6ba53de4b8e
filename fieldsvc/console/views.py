"""The county officials' console at ``/console/``: server-rendered pages over the domain services.

Thin like the API views: form → schema → service → template. Every route declares its role with
``requires_role`` (which is also the transaction boundary) and reads the actor from the signed
session (``http.current_actor``). Reads are open to officials and admins; the writes are given to the
same roles as the matching API endpoint (conflicts, approvals, grading runs and certificates:
``official``; devices: ``official``/``admin``). Lab accounts sign in to their workspace only
(``console/lab.py``: upload, dry run, commit, imports); sampler accounts are refused (403). A
service's refusal (a ``Problem``) rolls the request back and renders an HTML page with its status,
message and named fields (``render_problem``).
"""

from __future__ import annotations

import io
import json
from datetime import timedelta, timezone
from typing import Any, Mapping
from urllib.parse import urlencode, urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from markupsafe import Markup

from ..audit.services import events_for, versions_for
from ..certificates import codes as cert_codes
from ..certificates import pdf as cert_pdf
from ..certificates import services as certs
from ..certificates.models import Certificate
from ..certificates.schemas import CertificateIn, RevokeIn
from ..dbtypes import utcnow
from ..devices import collect
from ..devices import services as devices
from ..devices.models import Device
from ..devices.schemas import DeviceIn, DevicePatch
from ..errors import Problem, not_found, validation_failed
from ..grading import maps as element_maps
from ..grading import plans as grading_plans
from ..grading import runs as grading_runs
from ..grading.basis import Basis, basis_of, basis_text, value_pm
from ..grading.pack_admin import resolve_pack, rule_pack_list
from ..grading.qualification import area_qualifications, parcel_qualifications
from ..grading.queries import area_grades, get_subject, grade_dict
from ..grading.schemas import RunIn
from ..http import ALL_ROLES, current_actor, paginate, public, register_error_renderer, requires_role
from ..lab import services as lab
from ..lab.schemas import RejectIn
from ..media import services as media_services
from ..openrosa import extensions as form_extensions
from ..openrosa import services as openrosa
from ..places import services as places
from ..render.qr import qr_png
from ..samples import review as sample_review
from ..samples import services as samples
from ..samples.conflicts import get_conflict
from ..samples.schemas import MoveToParcelIn
from ..sync import resolve
from ..sync.push import flat_fields
from ..sync.schemas import ConflictResolveIn
from ..tiles import services as tiles
from . import auth, county_memo, csrf, display, i18n, queries
from . import map as parcel_map

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates")

READERS = ("official", "admin")  # who may open console pages
SIGN_IN = (*READERS, "lab")  # lab accounts sign in to their workspace only (console/lab.py)
DEVICE_WRITERS = ("official", "admin")  # as POST/PATCH /api/v1/devices
ACT = ("official",)  # as the API: conflicts, approvals, grading runs, certificates, labels
HTML_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}  # (and the Content-Security-Policy of ``content_security_policy``)
AUDIT_TYPES = ("parcel", "sample", "lab_result", "certificate", "device", "sync_conflict", "region", "farm_park",
               "grading_run")


# --- set-up: session cookie, error pages, language, CSRF --------------------------------------------

@bp.record_once
def _setup(state: Any) -> None:
    app: Flask = state.app
    app.config["SESSION_COOKIE_NAME"] = "fieldsvc_console"
    app.config["SESSION_COOKIE_PATH"] = "/"  # the console and its map tiles; the API never reads it (http.py)
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_SECURE"] = str(app.config["PUBLIC_BASE_URL"]).startswith("https://")
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(seconds=app.config["TOKEN_TTL_S"])
    register_error_renderer(app, bp.name, render_problem)


@bp.before_request
def _before() -> None:
    wanted = request.args.get("lang")
    if wanted in i18n.SUPPORTED:
        session["lang"] = wanted
    csrf.check()


def basemap_source(url: str) -> str:
    """The CSP source of an XYZ template's host: ``https://{a-c}.tile.example/{z}/...`` →
    ``https://*.tile.example``; empty when no basemap is configured."""
    if not url:
        return ""
    parts = urlsplit(url)
    host = parts.netloc
    if "{" in host:
        host = "*." + host.split(".", 1)[1] if "." in host else ""
    return f"{parts.scheme}://{host}" if parts.scheme in ("http", "https") and host else ""


def content_security_policy(basemap_url: str) -> str:
    """Our origin only, plus the configured basemap's host for its tiles; scripts from our origin."""
    extra = basemap_source(basemap_url)
    extra = f" {extra}" if extra else ""
    return ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            f"img-src 'self' data: blob:{extra}; connect-src 'self'{extra}; worker-src 'self' blob:; "
            "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", content_security_policy(current_app.config["BASEMAP_URL"]))
    for name, value in HTML_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers["Vary"] = "Cookie, Accept-Language"
    return response


def lang() -> str:
    return session.get("lang") or i18n.negotiate(request.headers.get("Accept-Language"))


@bp.app_template_filter("console_json")
def _json_filter(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True, default=str)


@bp.context_processor
def _context() -> dict[str, Any]:
    language = lang()
    strings = i18n.STRINGS[language]

    def t(key: str, **values: Any) -> str:
        text = strings.get(key) or i18n.STRINGS["en"].get(key) or key
        return text.format(**values) if values else text

    def csrf_field() -> Markup:
        return Markup('<input type="hidden" name="{}" value="{}">').format(csrf.FIELD, csrf.token())

    def switch_url() -> str:
        args = request.args.to_dict()
        args["lang"] = "en" if language == "zh" else "zh"
        return request.path + "?" + urlencode(args)

    return {"t": t, "lang": language, "csrf_field": csrf_field, "actor": g.get("actor"),
            "switch_url": switch_url, "grade_label": lambda grade: i18n.grade_label(grade, language),
            "reason": lambda text: i18n.reason_text(text, language),
            "basis_label": lambda b: basis_text(b, language), "pm": value_pm,
            "short": lambda text, n=12: (text or "")[:n], "iso": display.local_minute,
            **display.helpers(language)}


def page(template: str, status: int = 200, **context: Any) -> Response:
    if request.blueprint != bp.name:  # an unknown /console/ URL: routing failed, so add the console's context
        context = {**_context(), **context}
    response = Response(render_template(f"console/{template}", **context), status=status, mimetype="text/html")
    return response


def done(message: str, target: str) -> Response:
    flash({"kind": "ok", "text": message})
    return redirect(target, code=303)


def confirmed() -> bool:
    """An irreversible action runs only from its confirmation page's form (``confirmed=1``)."""
    return request.form.get("confirmed") == "1"


def ask(title: str, lines: list[str], button: str, cancel: str) -> Response:
    """The confirmation page: what will happen, and the same form again with ``confirmed=1``.

    Server-side on purpose: a script's ``confirm()`` is skipped by a double click, a missing script or
    a replayed request; this way nothing changes until the second, explicit POST."""
    carried = [(k, v) for k, v in request.form.items(multi=True) if k not in (csrf.FIELD, "confirmed")]
    return page("confirm.html", title=title, lines=lines, button=button, cancel=cancel, action=request.path,
                carried=carried)


def render_problem(problem: Problem) -> Response:
    """Console errors: sign-in needed → the login page; anything else → an HTML page of the same status."""
    if problem.status == 401:
        session.pop("token", None)
        target = request.full_path.rstrip("?") if request.method == "GET" else url_for("console.index")
        return redirect(url_for("console.login", next=target), code=303)
    details = problem.details or {}
    fields = details.get("fields") if isinstance(details.get("fields"), Mapping) else {}
    reasons = details.get("reasons") if isinstance(details.get("reasons"), list) else []
    back = request.referrer if _local(request.referrer) else url_for("console.index")
    response = page("error.html", problem.status, problem=problem, fields=fields, reasons=reasons, back=back)
    for name, value in problem.headers.items():
        if name.lower() != "www-authenticate":
            response.headers[name] = value
    return response


def _local(url: str | None, *, path_only: bool = False) -> bool:
    """Only paths of this console are followed after login or for a back link (no open redirect).

    ``next=`` must be a path (``/console/...``); a referrer may also be an absolute http(s) URL
    of this very host. ``javascript:``, ``//host``, backslashes and control characters never pass.
    """
    if not url or "\\" in url or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        return False
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        if path_only:
            return False
        # a referrer is absolute: only this very origin (http(s)) is ours
        if parts.scheme not in ("http", "https") or parts.netloc != request.host:
            return False
    return parts.path.startswith("/console/")


def _form() -> dict[str, Any]:
    return {k: v for k, v in request.form.items() if k not in (csrf.FIELD, "confirmed")}


CERTIFICATES_PAGE = 200  # rows per page of the certificate and device lists (newest first, ?before=)
DEVICES_PAGE = 200


def _newest_first(stmt: Any, key: Any, size: int) -> tuple[list[Any], str | None]:
    """One page of a list, newest first, after ``?before=<cursor>`` (the older link's)."""
    return paginate(stmt, key, size, request.args.get("before"), newest_first=True, param="before")


def _county(code: str | None = None) -> str:
    """The county a page is about: the account's own, or ``?county=``, or the first one visible."""
    actor = current_actor()
    code = code or request.args.get("county") or actor.county_code
    if not code:
        visible = queries.counties(actor)
        if not visible:
            raise not_found("county", "-")
        code = visible[0].code
    region = places.get_region_by_code(code, actor)
    if region.level != "county":
        raise not_found("county", code)
    return region.code


# --- session login ---------------------------------------------------------------------------------

@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    """The console's sign-in form (rate-limited like ``POST /api/v1/auth/token``)."""
    nxt = request.values.get("next") or ""
    nxt = nxt if _local(nxt, path_only=True) else url_for("console.index")
    if request.method == "GET":
        return page("login.html", next=nxt)
    outcome = auth.sign_in(request.form.get("username", ""), request.form.get("password", ""),
                           request.remote_addr or "unknown", current_app.config, SIGN_IN)
    if isinstance(outcome, Problem):  # returned, not raised, so the failure count commits
        response = page("login.html", outcome.status, next=nxt, error=outcome.code,
                        username=request.form.get("username", ""))
        if "Retry-After" in outcome.headers:
            response.headers["Retry-After"] = outcome.headers["Retry-After"]
        return response
    return redirect(nxt, code=303)


@bp.post("/logout")
@requires_role(*ALL_ROLES)
def logout():
    """Sign out: the session's token is revoked, the cookie cleared."""
    auth.sign_out()
    return redirect(url_for("console.login"), code=303)


# --- overview: county → village / park → parcel ----------------------------------------------------

@bp.get("/")
@requires_role(*SIGN_IN)
def index():
    """The counties this account may see (one county: straight to its overview); a lab: its workspace."""
    if current_actor().role == "lab":
        return redirect(url_for("console.lab_home"), code=303)
    visible = queries.counties(current_actor())
    if len(visible) == 1:
        return redirect(url_for("console.county", code=visible[0].code), code=303)
    return page("index.html", counties=visible)


def _area_rows(kind: str, items: list[Any]) -> list[dict[str, Any]]:
    """The overview's rows: every village's or park's grade read at once (maintained sums; grouped when live)."""
    grades = area_grades(kind, [item.code for item in items], resolve_pack(None), county_memo.remembered)
    out = []
    for item in items:
        ag, _ = grades[item.code]
        out.append({"code": item.code, "name": item.name, "name_en": item.name_en, "grade": ag.grade,
                    "qualified": ag.qualified, "parcels": ag.parcel_count, "graded": ag.graded_count,
                    "coverage": ag.coverage})
    return out


@bp.get("/county/<code>")
@requires_role(*READERS)
def county(code: str):
    """A county: coverage counts, villages and farm parks by grade, the parcel map."""
    actor = current_actor()
    region = places.get_region_by_code(code, actor)
    if region.level != "county":
        raise not_found("county", code)
    mode = request.args.get("color", "grade")
    if mode not in parcel_map.MODES:
        raise validation_failed({"color": [f"one of {', '.join(parcel_map.MODES)}"]})
    all_villages = queries.villages(code)
    villages = [v for v in _area_rows("village", all_villages) if v["parcels"]]
    cov = county_memo.remembered(("coverage", code), lambda: queries.county_coverage(
        code, [v.code for v in all_villages], resolve_pack(None), county_memo.remembered))  # after the rows
    parks = _area_rows("farm_park", queries.farm_parks(code))
    grades: dict[str, int] = {}
    for row in villages + parks:
        grades[row["grade"] or "-"] = grades.get(row["grade"] or "-", 0) + 1
    return page("county.html", region=region, mode=mode, coverage=cov, total=cov.parcels,
                villages=villages, parks=parks, grade_counts=grades, map_config=_map_config(code, mode, surfaces=True),
                element_maps=ELEMENT_MAPS,
                queue_counts=queries.queue_counts(actor))


ELEMENT_MAPS = ("Cd", "Pb", "As", "Se", "pH")  # the county page links these (issue 14: maps with their reports)


@bp.get("/maps/<county>/<analyte>.<any(png,json,tif):fmt>")
@requires_role(*READERS)
def element_map(county: str, analyte: str, fmt: str):
    """A county's element map for a signed-in page: the same files as ``GET /api/v1/maps/...``."""
    body = element_maps.element_map_file(county, analyte, fmt, resolve_pack(None), current_actor())
    if isinstance(body, dict):
        return body
    return Response(body, mimetype=element_maps.FORMATS[fmt],
                    headers={"Content-Disposition": f'inline; filename="{county}-{analyte}.{fmt}"'})


MAP_STRINGS = ("close", "open_parcel", "village", "land_use", "verdict", "grade", "sampling", "parcel",
               "collected_at", "sampler", "accuracy", "photos", "flags", "state", "not_found", "estimated")
MAP_PREFIXES = ("cat_", "lu_", "flag_", "kind_", "grade_", "surface_")


def _map_config(county: str, mode: str, focus: dict[str, Any] | None = None,
                points: list[dict[str, Any]] | None = None, surfaces: bool = False) -> dict[str, Any]:
    """What the map script needs (``data-map``): tile and search URLs, the county's extent, the basemap
    (or none: a plain background), the colour mode and its own strings in the page's language.

    A subject's page passes ``focus`` (its outline and extent: the map fits and outlines it) and, for a
    parcel, ``points`` (its samples with their GPS accuracy, drawn as circles); the overview passes
    ``surfaces``: the element maps it may lay over the tiles (``.png?overlay=1`` at the ``.json``'s extent)."""
    strings = i18n.STRINGS[lang()]
    english = i18n.STRINGS["en"]
    keys = [k for k in english if (k in MAP_STRINGS or k.startswith(MAP_PREFIXES)) and "not_graded" not in k]
    grades = {f"grade_{g}": i18n.grade_label(g, lang()) for g in ("clean", "still_clean", "A", "B", "C")}
    config = current_app.config
    basemap = ({"url": config["BASEMAP_URL"], "attribution": config["BASEMAP_ATTRIBUTION"]}
               if config["BASEMAP_URL"] else None)
    return {"tiles": url_for("tiles.tile", layer="L", z=0, x=0, y=0).split("/L/")[0],
            "find": url_for("console.map_find"), "parcel_url": url_for("console.parcel", code="X")[:-1],
            "bbox": focus["bbox"] if focus else tiles.county_bbox(county) if county else None,
            "basemap": basemap, "mode": mode, "lang": lang(), "colours": tiles.COLOURS, "focus": focus,
            "points": points or [], "surfaces": _surfaces(county) if surfaces else None,
            "strings": {**{k: strings.get(k) or english[k] for k in keys}, **grades}}


def _surfaces(county: str) -> dict[str, Any]:
    """The analytes of the default pack and where their overlay and its extent are."""
    return {"analytes": element_maps.analytes_of(resolve_pack(None)),
            "json": url_for("console.map_surface", county=county, analyte="ANALYTE", fmt="json"),
            "png": url_for("console.map_surface", county=county, analyte="ANALYTE", fmt="png")}


@bp.get("/map/surface/<county>/<analyte>.<fmt>")
@requires_role(*READERS)
def map_surface(county: str, analyte: str, fmt: str):
    """The overview's element surface, signed in by the console's session: ``.json`` the model report
    with the overlay's extent and legend, ``.png`` the overlay (as ``/api/v1/maps/...png?overlay=1``)."""
    if fmt not in ("json", "png"):
        raise not_found("map format", fmt)
    body = element_maps.element_map_file(county, analyte, fmt, resolve_pack(None), current_actor(), web_overlay=True)
    return body if isinstance(body, dict) else Response(body, mimetype="image/png")


@bp.get("/map/find")
@requires_role(*READERS)
def map_find():
    """The map's search: a parcel, village or farm park (code or name) or a bag code → where it is."""
    return tiles.find(request.args.get("q", ""), current_actor())


AREA_ROWS = 100  # parcels listed on a village's or park's page; the rest in the parcel list (filter, sort, page)


def _area_page(kind: str, code: str, subject: Any) -> Response:
    """A village's or farm park's page. Its counts are counted in the database, its parcel table is the
    first ``AREA_ROWS`` parcels with a link to the full, filterable list: the page's size and time stay
    the same at 100 or 10,000 parcels (the map draws tiles)."""
    actor = current_actor()
    mode = request.args.get("color", "grade")
    if mode not in parcel_map.MODES:
        raise validation_failed({"color": [f"one of {', '.join(parcel_map.MODES)}"]})
    rows = queries.parcels_in(kind, code, AREA_ROWS)
    shown = [r.code for r in rows]
    pack = resolve_pack(None)
    grade = grade_dict(get_subject(kind, code, actor), pack)
    cov = queries.coverage_counts(kind, code)
    certificates = queries.certificates_of(actor, kind, code)
    map_config = _map_config(subject.county_code, mode, focus=tiles.area_focus(kind, code, subject.county_code))
    list_url = url_for("console.list_view", kind="parcels", **{"village" if kind == "village" else "farm_park": code})
    return page("area.html", kind=kind, subject=subject, grade=grade, rows=rows,
                states=queries.sampling_states_of(shown), verdicts=queries.verdicts_of(shown),
                bases=queries.bases_of(shown), not_assessed=Basis("not_assessed"),
                map_config=map_config, mode=mode, coverage=cov, total=cov.parcels, list_url=list_url,
                certificates=certificates, moment=certs.now(), status_at=certs.status_at)


@bp.get("/village/<code>")
@requires_role(*READERS)
def village(code: str):
    """A village: its grade and coverage, its parcels and their map."""
    region = places.get_region_by_code(code, current_actor())
    if region.level != "village":
        raise not_found("village", code)
    return _area_page("village", code, region)


@bp.get("/farm-park/<code>")
@requires_role(*READERS)
def farm_park(code: str):
    """A farm park: its grade and coverage, its parcels and their map."""
    return _area_page("farm_park", code, places.get_farm_park_by_code(code, current_actor()))


@bp.get("/parcel/<code>")
@requires_role(*READERS)
def parcel(code: str):
    """A parcel: its grade with the explanation, its samples and their lab results, its certificates."""
    actor = current_actor()
    row = places.get_parcel_by_code(code, actor, allow_deleted=True)
    feature = places.parcel_feature(row)
    grade = grade_dict(get_subject("parcel", code, actor), resolve_pack(None))
    sample_rows = queries.samples_of_parcel(code, actor)
    results = queries.results_of_samples([s.id for s in sample_rows], actor)
    conflicts = queries.open_conflicts_for([s.id for s in sample_rows], actor)
    points = [{"code": s.code, "lat": s.lat, "lon": s.lon, "accuracy_m": s.accuracy_m}
              for s in sample_rows if s.lat is not None and s.lon is not None and s.deleted_at is None]
    map_config = _map_config(feature["properties"]["county"], "grade",
                             focus=tiles.parcel_focus(code, feature["geometry"]), points=points)
    basis = basis_of(grade.get("verdict"), grade.get("explanation"), grade.get("inputs"))
    cert_rows = queries.certificates_of(actor, "parcel", code)
    return page("parcel.html", parcel=feature, grade=grade, basis=basis, samples=sample_rows, results=results,
                conflicts=conflicts, map_config=map_config, certificates=cert_rows, moment=certs.now(),
                status_at=certs.status_at, effective_state=samples.effective_state,
                extra_answers=_extra_answers, evidence=_evidence(sample_rows))


def _extra_answers(sample: Any) -> list[tuple[str, str]]:
    """A sample's answers to the form extension's questions, by their labels in the page's language."""
    return form_extensions.describe_answers(sample.extra, sample.extension_version, lang())


def _evidence(sample_rows: list[Any]) -> dict[str, Any]:
    """What the field collected, for officials: each sample's photos (those fully arrived), its
    device's name and the latest review of its flags. Never on a public page."""
    shas = [m["sha256"] for s in sample_rows for m in s.media or [] if m.get("sha256")]
    arrived = queries.complete_blobs(shas)
    photos = {s.id: [m for m in s.media or [] if m.get("sha256") in arrived
                     and str(m.get("mime") or "").startswith("image/")] for s in sample_rows}
    waiting = {s.id: sum(1 for m in s.media or [] if m.get("sha256") not in arrived) for s in sample_rows}
    return {"photos": photos, "waiting": waiting,
            "devices": queries.device_names([s.device_pk for s in sample_rows]),
            "reviews": queries.review_notes([s.id for s in sample_rows])}


THUMB_PX = (240, 180)  # a thumbnail's box: a parcel page lists every photo, a phone photo is megabytes


def display_thumbnail(path: Any) -> bytes:
    """A small JPEG of a photo (the page shows these; a click opens the original)."""
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        small = ImageOps.exif_transpose(image).convert("RGB")
        small.thumbnail(THUMB_PX)
        out = io.BytesIO()
        small.save(out, "JPEG", quality=75)
    return out.getvalue()


@bp.get("/media/<sha256>")
@requires_role(*READERS)
def media(sha256: str):
    """A sample's photo for the console, under the media access policy (404 when not the account's
    to see); signed in by the session, so an ``<img>`` can show it."""
    sha = media_services.check_sha(sha256)
    upload = media_services.blob_status(sha)
    media_services.may_read(sha, current_actor())
    if not upload.complete:
        raise not_found("media", sha)
    mime = next((str(m.get("mime")) for s in queries.samples_naming(sha, current_actor())
                 for m in s.media or [] if m.get("sha256") == sha and str(m.get("mime") or "").startswith("image/")),
                "application/octet-stream")
    if request.args.get("size") == "thumb" and mime.startswith("image/"):
        response = Response(display_thumbnail(media_services.storage().path(sha)), mimetype="image/jpeg")
        response.set_etag(sha + "-thumb")
    else:
        response = send_file(media_services.storage().path(sha), mimetype=mime, download_name=sha, etag=sha,
                             max_age=86400)
    response.headers["Cache-Control"] = "private, max-age=86400"  # the page is no-store; its photos need not be
    return response


# --- queues ---------------------------------------------------------------------------------------

@bp.get("/queues")
@requires_role(*READERS)
def queues():
    """What blocks grading: conflicts, held samples and results, pending approvals, QC holds, flags."""
    actor = current_actor()
    counts = queries.queue_counts(actor)
    rows = {name: queries.queue_rows(actor, name) for name in counts}
    result_samples = queries.samples_by_id([r.sample_id for name in ("pending_results", "qc_holds")
                                            for r in rows[name] if r.sample_id])
    devices_of = queries.device_names([s.device_pk for s in rows["flagged_samples"]])  # who took each
    return page("queues.html", counts=counts, rows=rows, result_samples=result_samples, devices_of=devices_of,
                approvals_required=current_app.config["LAB_APPROVALS_REQUIRED"],
                effective_state=samples.effective_state, flags=queries.FLAGS)


@bp.get("/conflicts/<int:conflict_id>")
@requires_role(*READERS)
def conflict_page(conflict_id: int):
    """One conflict: the server's and the phone's values side by side, and the resolve form."""
    c = get_conflict(conflict_id, current_actor())
    # each custom answer is a field of its own (``extra.<question>``), as the merge judged it
    server, incoming = flat_fields(c.server_body or {}), flat_fields(c.incoming_body or {})
    names = list(dict.fromkeys([*server, *incoming]))
    differing = [n for n in names if server.get(n) != incoming.get(n)]
    return page("conflict.html", c=c, server=server, incoming=incoming, names=names, differing=differing)


@bp.post("/conflicts/<int:conflict_id>/resolve")
@requires_role(*ACT)
def resolve_conflict(conflict_id: int):
    """Resolve with keep_server / take_incoming / merge (per field, which side wins)."""
    actor = current_actor()
    c = get_conflict(conflict_id, actor)
    form = _form()
    values: dict[str, Any] = {}
    if form.get("resolution") == "merge":  # per field, the side that wins
        sides = {"server": flat_fields(c.server_body or {}), "incoming": flat_fields(c.incoming_body or {})}
        errors = {}
        for name in sorted({*sides["server"], *sides["incoming"]}):
            side = form.get(f"pick.{name}")
            if side is None:
                continue
            if side not in sides:
                errors[f"pick.{name}"] = ["one of server, incoming"]
            else:
                values[name] = sides[side].get(name)
        if errors:
            raise validation_failed(errors)
    if form.get("code", "").strip():
        values["code"] = form["code"].strip()
    data = ConflictResolveIn().load({"resolution": form.get("resolution", ""), "values": values})
    resolve.resolve_conflict(conflict_id, data["resolution"], data["values"], actor)
    return done(_t("resolved_ok", id=conflict_id), url_for("console.conflict_page", conflict_id=conflict_id))


@bp.post("/results/<int:result_id>/approve")
@requires_role(*ACT)
def approve_result(result_id: int):
    """Approve a lab result (four-eyes: never one's own import)."""
    lab.approve_result(result_id, current_actor(), current_app.config["LAB_APPROVALS_REQUIRED"])
    return done(_t("approved_ok", id=result_id), url_for("console.queues") + "#pending_results")


@bp.post("/results/<int:result_id>/reject")
@requires_role(*ACT)
def reject_result(result_id: int):
    """Reject (or, for a held result, dismiss) a lab result with a reason; it is kept, never graded."""
    data = RejectIn().load(_form())
    if not confirmed():
        result = lab.get_result(result_id, current_actor())
        return ask(_t("confirm_reject_result", id=result_id, analyte=display.analyte_name(result.analyte, lang()),
                      sample=result.sample_code),
                   [_t("reason") + ": " + data["reason"], _t("confirm_reject_result_hint")], _t("reject"),
                   url_for("console.queues"))
    lab.reject_result(result_id, data["reason"], current_actor())
    return done(_t("rejected_ok", id=result_id), url_for("console.queues"))


@bp.post("/results/<int:result_id>/link")
@requires_role(*ACT)
def link_result(result_id: int):
    """Link a held result to its sample once a sample with its bag code has arrived."""
    count = lab.link_held_result(result_id, current_actor())
    return done(_t("linked_ok", n=count), url_for("console.queues") + "#held_results")


@bp.post("/samples/<sample_id>/link")
@requires_role(*ACT)
def link_sample(sample_id: str):
    """Link a held sample to its parcel once the parcel exists (flags and state recomputed)."""
    samples.link_held_sample(sample_id, current_actor())
    return done(_t("linked_ok", n=1), url_for("console.queues") + "#held_samples")


@bp.post("/samples/<sample_id>/parcel")
@requires_role(*ACT)
def move_sample(sample_id: str):
    """Put a held sample on the parcel it was really taken on (the sampler mistyped the code)."""
    actor = current_actor()
    parcel = MoveToParcelIn().load({"parcel": _form().get("parcel", "")})["parcel"]
    sample = samples.move_to_parcel(samples.get_sample_by_id(sample_id, actor, for_update=True), parcel, actor)
    return done(_t("moved_ok", code=sample.code, parcel=sample.parcel_code),
                url_for("console.queues") + "#held_samples")


@bp.post("/samples/<sample_id>/dismiss")
@requires_role(*ACT)
def dismiss_sample(sample_id: str):
    """Dismiss a held sample: a tombstone (every version is kept; pulls see it as deleted)."""
    if not confirmed():
        held = samples.get_sample_by_id(sample_id, current_actor())
        return ask(_t("confirm_dismiss_sample", code=held.code), [_t("confirm_dismiss_sample_hint")], _t("dismiss"),
                   url_for("console.queues") + "#held_samples")
    sample = samples.dismiss_held_sample(sample_id, current_actor(), utcnow())
    return done(_t("dismissed_ok", code=sample.code), url_for("console.queues") + "#held_samples")


@bp.post("/samples/<sample_id>/accept")
@requires_role(*ACT)
def accept_sample_flags(sample_id: str):
    """Accept a flagged sample's flags with a note (audited; the flags stay, marked accepted)."""
    actor = current_actor()
    note = _form().get("note", "")
    back = _back_to(sample_id)
    if not confirmed():
        held = samples.get_sample_by_id(sample_id, actor)
        flags = ", ".join(_t("flag_" + f) for f in sample_review.review_flags(held.flags))
        if not note.strip():
            raise validation_failed({"note": [_t("note_required")]})
        return ask(_t("confirm_accept_flags", code=held.code), [_t("flags") + ": " + flags,
                   _t("note") + ": " + note.strip(), _t("confirm_accept_flags_hint")], _t("accept_flags"), back)
    sample = sample_review.accept_flags(sample_id, note, actor)
    return done(_t("accepted_ok", code=sample.code), back)


@bp.post("/samples/<sample_id>/send-back")
@requires_role(*ACT)
def send_back_sample(sample_id: str):
    """Send a flagged sample back to its device: its next pull shows it as needing attention."""
    actor = current_actor()
    note = _form().get("note", "")
    back = _back_to(sample_id)
    if not confirmed():
        held = samples.get_sample_by_id(sample_id, actor)
        lines = [_t("confirm_send_back_hint")] + ([_t("note") + ": " + note.strip()] if note.strip() else [])
        return ask(_t("confirm_send_back", code=held.code), lines, _t("send_back"), back)
    sample = sample_review.send_back(sample_id, note, actor)
    return done(_t("sent_back_ok", code=sample.code), back)


def _back_to(sample_id: str) -> str:
    """Where a review returns: the page it came from (the parcel or the queue), else the queue."""
    nxt = request.form.get("next") or ""
    return nxt if _local(nxt, path_only=True) else url_for("console.queues") + "#flagged_samples"


# --- grading ----------------------------------------------------------------------------------------

@bp.get("/grading")
@requires_role(*READERS)
def grading_page():
    """Run grading for a scope; the recent runs of the county."""
    actor = current_actor()
    code = _county()
    return page("grading.html", county=code, runs=queries.runs(actor, code), packs=rule_pack_list(),
                villages=queries.villages(code), parks=queries.farm_parks(code))


@bp.post("/grading/runs")
@requires_role(*ACT)
def run_grading():
    """Grade every parcel of a scope and rebuild its roll-ups."""
    form = _form()
    scope_type = form.get("scope_type", "")
    data = RunIn().load({"scope": {scope_type: form.get("code", "").strip()} if scope_type else {},
                         "rule_pack": form.get("rule_pack") or None})
    ((kind, code),) = data["scope"].items()
    run = grading_runs.run_grading(kind, code, data["rule_pack"], current_actor())
    return done(_t("run_ok", id=run.id), url_for("console.run_page", run_id=run.id))


@bp.get("/grading/runs/<int:run_id>")
@requires_role(*READERS)
def run_page(run_id: int):
    """One run: its counts and every subject whose grade changed since the run before it."""
    run = grading_runs.get_run(run_id, current_actor())
    return page("run.html", run=grading_runs.run_dict(run), previous=queries.previous_run(run))


# --- certificates ------------------------------------------------------------------------------

@bp.get("/certificates")
@requires_role(*READERS)
def certificates():
    """Certificates of the county; candidates with the reasons those that do not qualify fail."""
    actor = current_actor()
    code = _county()
    candidates = []
    for kind, items in (("village", queries.villages(code)), ("farm_park", queries.farm_parks(code))):
        found = area_qualifications(kind, [item.code for item in items], county=code, dated=False,
                                    memo=county_memo.remembered)  # grouped, not per area
        for item in items:
            q = found[item.code]
            if kind == "village" and not q.explanation["parcel_count"]:
                continue
            candidates.append({"type": kind, "code": item.code, "name": item.name, "qualified": q.qualified,
                               "reasons": q.reasons, "grade": q.grade})
    parcel_codes = queries.qualified_parcels(code) + queries.not_qualified_parcels(code)
    found = parcel_qualifications(parcel_codes)  # grouped, not a dozen queries per parcel
    for parcel_code in parcel_codes:
        q = found[parcel_code]
        candidates.append({"type": "parcel", "code": parcel_code, "name": parcel_code, "qualified": q.qualified,
                           "reasons": q.reasons, "grade": q.grade})
    rows, older = _newest_first(queries.certificates(actor, code), Certificate.id, CERTIFICATES_PAGE)
    moment = certs.now()
    templates = cert_pdf.label_templates()
    flagged = certs.list_serials(actor, current_app.config, flagged=True, limit=100)
    return page("certificates.html", county=code, candidates=candidates, certificates=rows, older=older,
                moment=moment, flagged=flagged,
                status_at=certs.status_at, templates=templates, format_code=cert_codes.format_code)


@bp.post("/certificates")
@requires_role(*ACT)
def issue_certificate():
    """Issue for a qualifying subject; a refusal shows grading's reasons (409 not_qualified)."""
    form = _form()
    body = {"subject_type": form.get("subject_type", ""), "code": form.get("code", "").strip()}
    if form.get("valid_days", "").strip():
        body["valid_days"] = form["valid_days"].strip()
    data = CertificateIn().load(body)
    if not confirmed():
        current = _valid_certificate_of(data["subject_type"], data["code"])
        if current is not None:
            return _ask_issue_again(current)
    key = form.get("idempotency_key") or None  # the form's own key: a double submit issues once
    cert, _ = certs.issue_certificate(data, current_actor(), current_app.config, key)
    return done(_t("issued_ok", code=cert.code), url_for("console.certificate", code=cert.code))


def _valid_certificate_of(subject_type: str, code: str) -> Certificate | None:
    """The subject's certificate that is valid now (the one issuing again would supersede)."""
    moment = certs.now()
    return next((c for c in queries.certificates_of(current_actor(), subject_type, code)
                 if certs.status_at(c, moment) == "valid"), None)


def _ask_issue_again(current: Certificate) -> Response:
    """Name the certificate a re-issue supersedes and the printed labels it will outdate."""
    formatted = cert_codes.format_code(current.code)
    subject = f"{_t(current.subject_type)} {current.subject_code}"
    serials = queries.serial_count(current.id)
    lines = [_t("confirm_issue_again_hint", subject=subject, code=formatted,
                issued=display.local_minute(current.issued_at), until=display.local_day(current.valid_until)),
             _t("confirm_labels_outdated", n=current.labels_printed, serials=serials)
             if current.labels_printed or serials else _t("confirm_no_labels")]
    return ask(_t("confirm_issue_again", code=formatted), lines, _t("yes_issue_again", code=formatted),
               url_for("console.certificate", code=current.code))


@bp.get("/certificates/<code>")
@requires_role(*READERS)
def certificate(code: str):
    """One certificate: status, subject, grade snapshot, scans, revoke and print forms."""
    cert = certs.get_certificate_by_code(code, current_actor())
    body = certs.certificate_dict(cert, current_app.config)
    templates = cert_pdf.label_templates()
    return page("certificate.html", cert=body, templates=templates)


@bp.get("/certificates/<code>.pdf")
@requires_role(*READERS)
def certificate_pdf(code: str):
    """The A4 certificate (watermarked unless valid)."""
    cert = certs.get_certificate_by_code(code, current_actor())
    return _pdf(certs.certificate_pdf(cert, current_app.config), f"certificate-{cert.code}.pdf")


@bp.post("/certificates/<code>/revoke")
@requires_role(*ACT)
def revoke_certificate(code: str):
    """Revoke with a reason the public page shows."""
    data = RevokeIn().load(_form())
    if not confirmed():
        current = certs.get_certificate_by_code(code, current_actor())
        formatted = cert_codes.format_code(current.code)
        return ask(_t("confirm_revoke_certificate", code=formatted),
                   [_t("reason") + ": " + data["reason"].strip(),
                    _t("confirm_revoke_certificate_hint", labels=current.labels_printed)],
                   _t("revoke"), url_for("console.certificate", code=current.code))
    cert = certs.revoke_certificate(code, data["reason"].strip(), current_actor())
    return done(_t("revoked_ok", code=cert.code), url_for("console.certificate", code=cert.code))


@bp.get("/labels.pdf")
@requires_role(*ACT)
def labels():
    """Plain labels for the chosen valid certificates, from a start slot (creates and counts nothing;
    counted labels go through the confirmed label sheet, ``console/labels.py``)."""
    from ..certificates.schemas import LabelArgs

    # the print form's "plain labels" button: its serial and override fields belong to the other button
    raw = {"codes": ",".join(request.args.getlist("codes")), "template": request.args.get("template") or "a4_3x7",
           "start_slot": request.args.get("start_slot") or "0"}
    args = LabelArgs().load(raw)
    config = current_app.config
    code_list = certs.parse_codes(args["codes"], config["LABELS_MAX_CODES"])
    body = certs.labels_pdf(code_list, args["template"], args["start_slot"], current_actor(), config)
    return _pdf(body, f"labels-{args['template']}.pdf", attachment=True)


def _pdf(body: bytes, filename: str, attachment: bool = False) -> Response:
    response = Response(body, mimetype="application/pdf")
    disposition = "attachment" if attachment else "inline"
    response.headers["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    return response


# --- devices ---------------------------------------------------------------------------------------

@bp.get("/devices")
@requires_role(*DEVICE_WRITERS)
def devices_page():
    """Devices of the county with their assignment, and the register form."""
    actor = current_actor()
    code = _county()
    rows, older = _newest_first(queries.devices(actor), Device.id, DEVICES_PAGE)
    return page("devices.html", devices=[devices.device_dict(d) for d in rows], older=older,
                samplers=queries.samplers(actor), villages=queries.villages(code), county=code)


@bp.post("/devices")
@requires_role(*DEVICE_WRITERS)
def register_device():
    """Register a device; its token and provisioning QR are shown on this one response only."""
    data = DeviceIn().load({"name": request.form.get("name", "").strip(), "user": request.form.get("user", ""),
                            "villages": request.form.getlist("villages"), "parcels": []})
    registered = devices.register_device(data, current_actor(), secret_key=current_app.config["SECRET_KEY"])
    text = devices.provisioning_text(current_app.config["PUBLIC_BASE_URL"], registered.device, registered.token)
    return page("device_registered.html", 201, device=devices.device_dict(registered.device),
                token=registered.token, link=text, qr=devices.png_data_url(qr_png(text)),
                collect_qr=_collect_qr(registered.device))


def _collect_qr(device: Device) -> str | None:
    """ODK Collect's settings QR for ``device`` (a PNG data URL), in the console's language."""
    config = current_app.config
    settings = devices.collect_settings(device, config["PUBLIC_BASE_URL"], config["SECRET_KEY"], lang())
    return devices.png_data_url(qr_png(collect.qr_payload(settings), box_size=4)) if settings else None


@bp.get("/devices/<device_id>")
@requires_role(*DEVICE_WRITERS)
def device(device_id: str):
    """One device: its assignment form and revoke button."""
    actor = current_actor()
    row = devices.get_device_by_id(device_id, actor)
    body = devices.device_dict(row)
    return page("device.html", device=body, villages=queries.villages(_county(row.county_code or None)),
                collect_qr=_collect_qr(row), planned=grading_plans.open_points(row))


@bp.post("/devices/<device_id>/assign")
@requires_role(*DEVICE_WRITERS)
def assign_device(device_id: str):
    """Replace the device's villages; what it loses comes down as deletes on its next pull."""
    actor = current_actor()
    data = DevicePatch().load({"villages": request.form.getlist("villages")})
    devices.change_assignment(devices.get_device_by_id(device_id, actor), data, actor)
    return done(_t("assigned_ok"), url_for("console.device", device_id=device_id))


@bp.post("/devices/<device_id>/revoke")
@requires_role(*DEVICE_WRITERS)
def revoke_device(device_id: str):
    """Revoke a device: its next request gets 401."""
    actor = current_actor()
    row = devices.get_device_by_id(device_id, actor)
    if not confirmed():
        return ask(_t("confirm_revoke_device", id=device_id), [f"{row.name}", _t("confirm_revoke_device_hint")],
                   _t("revoke"), url_for("console.device", device_id=device_id))
    devices.revoke_device(row, actor)
    return done(_t("device_revoked_ok", id=device_id), url_for("console.device", device_id=device_id))


# --- audit ------------------------------------------------------------------------------------------

# Each entity type's own lookup, so the audit page inherits its county scoping and 404s.
_VISIBLE = {
    "parcel": lambda key, actor: places.get_parcel_by_code(key, actor, allow_deleted=True),
    "sample": lambda key, actor: samples.get_sample_by_id(key, actor),
    "lab_result": lambda key, actor: lab.get_result(_int(key), actor),
    "certificate": lambda key, actor: certs.get_certificate_by_code(key, actor),
    "device": lambda key, actor: devices.get_device_by_id(key, actor),
    "sync_conflict": lambda key, actor: get_conflict(_int(key), actor),
    "region": lambda key, actor: places.get_region_by_code(key, actor),
    "farm_park": lambda key, actor: places.get_farm_park_by_code(key, actor),
    "grading_run": lambda key, actor: grading_runs.get_run(_int(key), actor),
}


def _require_visible(entity_type: str, key: str) -> Any:
    """The entity, or 404 unless the account may see it through its own service (county scoping)."""
    lookup = _VISIBLE.get(entity_type)
    if lookup is None:
        raise not_found("entity type", entity_type)
    return lookup(key, current_actor())


def _int(text: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise not_found("entity", text)
    return int(text)


@bp.get("/audit/<entity_type>/<key>")
@requires_role(*READERS)
def audit(entity_type: str, key: str):
    """The audit trail and stored versions of one entity."""
    entity = _require_visible(entity_type, key)
    keys = [key]
    if entity_type == "sync_conflict":  # a conflict is logged under its record id, its resolution under its id
        keys.append(get_conflict(_int(key), current_actor()).record_id)
    events = [e for k in keys for e in events_for(entity_type, k)]
    events.sort(key=lambda e: e.id)
    is_sample = entity_type == "sample"
    return page("audit.html", entity_type=entity_type, key=key, events=events,
                versions=_versions(entity_type, key, entity),
                instances=_collect_instances(key) if is_sample else [],
                answers=_extra_answers(entity) if is_sample else [],
                clients=_version_clients(key) if is_sample else [])


def _versions(entity_type: str, key: str, entity: Any) -> list:
    """Stored versions, and for samples and parcels the first version their row still holds."""
    if entity_type == "sample":
        return samples.versions(entity)
    if entity_type == "parcel":
        return places.parcel_versions(entity)
    return versions_for(entity_type, key)


def _collect_instances(sample_id: str) -> list[dict[str, Any]]:
    """The ODK Collect instances that made a sample's versions: device id, app, extra answers."""
    china = timezone(timedelta(hours=8))  # the service's counties are all on China Standard Time
    return [{"version": row.sample_version, "instance_id": row.instance_id, "edit": row.deprecated_id is not None,
             "at": row.received_at.astimezone(china).strftime("%Y-%m-%d %H:%M"), "device": row.collect_device_id,
             "agent": row.user_agent,
             "answers": form_extensions.describe_answers(row.extra, row.extension_version, lang())}
            for row in openrosa.instances_of(sample_id)]


def _version_clients(sample_id: str) -> list[dict[str, Any]]:
    """Who made each version of a sample: sync or ODK Collect, the device id and the app (User-Agent)."""
    china = timezone(timedelta(hours=8))
    return [{"version": row.version, "channel": _t(f"channel_{row.channel}"), "device": row.device_id,
             "agent": row.user_agent, "at": row.received_at.astimezone(china).strftime("%Y-%m-%d %H:%M")}
            for row in samples.clients_of(sample_id)]


def _t(key: str, **values: Any) -> str:
    text = i18n.STRINGS[lang()].get(key) or i18n.STRINGS["en"].get(key) or key
    return text.format(**values)


from . import lab as _lab_pages  # noqa: E402,F401  (the lab workspace and review pages hang on this blueprint)
from . import labels as _label_pages  # noqa: E402,F401  (label printing: confirm, sheet, PDF)
from . import lists_views as _list_pages  # noqa: E402,F401  (lists, search and export jobs hang on this blueprint)
from . import plans as _plan_pages  # noqa: E402,F401  (where to sample next, sending it to a device)
