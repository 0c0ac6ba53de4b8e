"""Grading endpoints (DESIGN §4.6): runs, grades, history, rule packs, reports. Thin: schema → service → JSON."""

from __future__ import annotations

from flask import Blueprint, Response

from ..errors import not_found
from ..http import ALL_ROLES, current_actor, json_body, load, query_args, requires_role
from ..openapi import doc
from ..schemas import page_limit
from . import pack_admin, queries, report_rows, reports, runs
from .schemas import ElementMapArgs, GradeArgs, HistoryArgs, NextSamplesArgs, RunIn

bp = Blueprint("grading", __name__, url_prefix="/api/v1")

REPORT_TYPES = {"village": "village", "farm-park": "farm_park", "county": "county"}
REPORT_FORMATS = {"pdf": "application/pdf", "csv": "text/csv; charset=utf-8",
                  "geojson": "application/geo+json"}


def _subject_type(url_type: str, allowed: dict[str, str] = queries.URL_TYPES) -> str:
    if url_type not in allowed:
        raise not_found("subject type", url_type)
    return allowed[url_type]


@bp.post("/grading/runs")
@requires_role("official")
@doc(body=RunIn, responses={201: "The run with its counts"})
def create_run():
    """Grade everything in a scope (county, village, farm park or parcel) and rebuild its sums."""
    data = load(RunIn(), json_body())
    ((scope_type, code),) = data["scope"].items()
    run = runs.run_grading(scope_type, code, data["rule_pack"], current_actor())
    return runs.run_dict(run), 201


@bp.get("/grading/runs/<int:run_id>")
@requires_role(*ALL_ROLES)
def get_run(run_id: int):
    """One grading run."""
    return runs.run_dict(runs.get_run(run_id, current_actor()))


@bp.get("/grades/<subject>/<code>")
@requires_role(*ALL_ROLES)
@doc(query=GradeArgs)
def get_grade(subject: str, code: str):
    """The current grade of a parcel, village, farm park or county (default pack: green-food soil)."""
    kind = _subject_type(subject)
    args = query_args(GradeArgs())
    pack = pack_admin.resolve_pack(args["rule_pack"])
    return queries.grade_dict(queries.get_subject(kind, code, current_actor()), pack)


@bp.get("/grades/<subject>/<code>/history")
@requires_role(*ALL_ROLES)
@doc(query=HistoryArgs)
def grade_history(subject: str, code: str):
    """Every grade this subject has had under a pack, oldest first."""
    kind = _subject_type(subject)
    args = query_args(HistoryArgs())
    pack = pack_admin.resolve_pack(args["rule_pack"])
    return queries.grade_history(kind, code, pack, current_actor(), page_limit(args), args["cursor"],
                                 pack_admin._verifications()).to_dict()


@bp.get("/rule-packs")
@requires_role(*ALL_ROLES)
def list_rule_packs():
    """Rule packs with versions, source standards and whether their values are verified."""
    items = pack_admin.rule_pack_list()
    return {"items": items, "next_cursor": None}


@bp.get("/reports/<subject>/<code>.<fmt>")
@requires_role(*ALL_ROLES)
@doc(query=GradeArgs, responses={200: "PDF, CSV or GeoJSON"}, content_type="application/pdf")
def get_report(subject: str, code: str, fmt: str):
    """A report of a village, farm park or county: summary, parcel table and map (.pdf, .csv, .geojson)."""
    kind = _subject_type(subject, REPORT_TYPES)
    if fmt not in REPORT_FORMATS:
        raise not_found("report format", fmt)
    args = query_args(GradeArgs())
    pack = pack_admin.resolve_pack(args["rule_pack"])
    subject_obj = queries.get_subject(kind, code, current_actor())
    summary = queries.grade_dict(subject_obj, pack)
    rows = report_rows.report_rows(kind, code, pack)
    render = {"pdf": reports.render_pdf, "csv": reports.render_csv, "geojson": reports.render_geojson}[fmt]
    body = render(summary, rows)
    filename = f"{kind}-{code}-{pack.code}.{fmt}"
    return Response(body, mimetype=REPORT_FORMATS[fmt].split(";")[0],
                    content_type=REPORT_FORMATS[fmt],
                    headers={"Content-Disposition": f'inline; filename="{filename}"'})


MAP_FORMATS = {"tif": "image/tiff", "png": "image/png", "json": "application/json"}


@bp.get("/maps/<county>/<analyte>.<fmt>")
@requires_role(*ALL_ROLES)
@doc(query=ElementMapArgs, responses={200: "GeoTIFF (estimate, sigma), PNG classed by the pack's limits "
                                           "(?overlay=1: without legend, on Web Mercator over the .json's extent), "
                                           "or the model report as JSON"}, content_type="image/png")
def get_element_map(county: str, analyte: str, fmt: str):
    """An element map of a county: estimate and sigma grids (.tif), a classed picture (.png), the model (.json)."""
    from . import maps

    if fmt not in MAP_FORMATS:
        raise not_found("map format", fmt)
    args = query_args(ElementMapArgs())
    pack = pack_admin.resolve_pack(args["rule_pack"])
    body = maps.element_map_file(county, analyte, fmt, pack, current_actor(), web_overlay=args["overlay"])
    if isinstance(body, dict):
        return body
    return Response(body, mimetype=MAP_FORMATS[fmt],
                    headers={"Content-Disposition": f'inline; filename="{county}-{analyte}.{fmt}"'})


@bp.get("/sampling/next")
@requires_role("official", "admin")
@doc(query=NextSamplesArgs)
def sampling_next():
    """Parcels ranked by what a sample there would settle (needs sampling, not assessed), with a point inside."""
    from . import sampling

    args = query_args(NextSamplesArgs())
    pack = pack_admin.resolve_pack(args["rule_pack"])
    pack.check_kind("green_food_soil")
    kind, code = ("village", args["village"]) if args["village"] else ("county", args["county"])
    subject = queries.get_subject(kind, code, current_actor())  # 404 outside the account's county
    items = sampling.next_samples(subject.county, pack, args["village"], args["limit"])
    return {"items": items, "next_cursor": None}
