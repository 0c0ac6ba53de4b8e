"""The console's lists, header search and exports for a filter (routes only; rules live below).

Thin like the rest of the console: the request's values go to ``listing.list_page`` (filters,
sorts, keyset pages, scope), ``search.search`` or ``exports.jobs``; the templates show the result.
An export at most ``EXPORT_JOB_ROWS`` rows long is streamed at once (the exports API's response);
a longer one is queued as a job (``exports.jobs``) and the browser goes to the job's page, which
refreshes until the file is ready — no request ever waits for a million rows.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Response, current_app, redirect, request, send_file, url_for

from ..errors import not_found
from ..exports import jobs, services
from ..exports.schemas import ExportArgs
from ..exports.views import MEDIA, export_response
from ..extensions import db
from ..http import current_actor, requires_role
from . import list_words, search
from .lab import local_time
from .list_specs import SPECS
from .listing import PAGE_SIZES, list_page
from .views import READERS, bp, lang, page

list_words.install()

EXPORT_FORMATS = ("xlsx", "csv", "geojson", "gpkg")
SEARCH_TARGETS = {"parcel": ("console.parcel", "code"), "sample": ("console.parcel", "code"),
                  "certificate": ("console.certificate", "code"), "village": ("console.village", "code"),
                  "farm_park": ("console.farm_park", "code"), "device": ("console.device", "device_id")}


def _cell_helpers() -> dict[str, Any]:
    return {"local_time": local_time, "mu": lambda m2: "—" if m2 is None else f"{m2 / 666.6667:,.1f}",
            "num": lambda v: "—" if v is None else (f"{v:,}" if isinstance(v, int) else f"{v:,.1f}")}


@bp.get("/lists/<kind>")
@requires_role(*READERS)
def list_view(kind: str):
    """Any console list, filtered, sorted and paged by the URL (``?q=&state=&sort=-code&cursor=``)."""
    spec = SPECS.get(kind)
    if spec is None:
        raise not_found("list", kind)
    args = request.args.to_dict(flat=True)
    result = list_page(spec, args, current_actor())
    keep = {**result.values, "sort": result.sort, "size": str(result.size)}
    exports = None
    if spec.export:
        exports = {fmt: url_for("console.export_for_list", resource=spec.export, fmt=fmt,
                                **result.export_args(spec)) for fmt in EXPORT_FORMATS}
    return page("list.html", nav="lists", spec=spec, result=result, keep=keep, specs=SPECS, exports=exports,
                sizes=PAGE_SIZES, **_cell_helpers())


@bp.get("/search")
@requires_role(*READERS)
def search_view():
    """The header's search box: one match → straight to it; else the matches (or none) listed."""
    q = request.args.get("q", "")
    hits = search.search(q, current_actor())
    exact = [h for h in hits if h.exact]
    only = hits[0] if len(hits) == 1 else exact[0] if len(exact) == 1 else None
    if only is not None:
        endpoint, param = SEARCH_TARGETS[only.kind]
        return redirect(url_for(endpoint, **{param: only.code}), code=303)
    return page("search.html", q=q.strip(), hits=hits, targets=SEARCH_TARGETS)


@bp.get("/export/<any(samples,results,grades,certificates):resource>.<any(xlsx,csv,geojson,gpkg):fmt>")
@requires_role(*READERS)
def export_for_list(resource: str, fmt: str):
    """A list's export: streamed when small, else queued as a background job (→ its page)."""
    actor = current_actor()
    args = ExportArgs().load(request.args.to_dict(flat=True) | {"lang": lang()})
    language = args.pop("lang")
    total = services.count(resource, args, actor)
    if total <= current_app.config["EXPORT_JOB_ROWS"]:
        return export_response(resource, fmt, {**args, "lang": language}, actor)
    job = jobs.queue(resource, fmt, args, language, actor, total)
    db.session.commit()
    if current_app.config["EXPORT_JOB_THREAD"]:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        job_id = job.id

        def work() -> None:
            with app.app_context():
                jobs.run(job_id, app.instance_path)

        jobs.start_thread(job_id, work)
    return redirect(url_for("console.export_job", job_id=job.id), code=303)


@bp.get("/export-jobs/<int:job_id>")
@requires_role(*READERS)
def export_job(job_id: int):
    """A job's progress (refreshing while it runs) and, once done, its download link."""
    job = jobs.get_job(job_id, current_actor())
    kept_until = (job.finished_at + timedelta(seconds=current_app.config["EXPORT_JOB_KEEP_S"])
                  if job.finished_at else None)
    return page("export_job.html", nav="lists", job=job, kept_until=kept_until, local_time=local_time,
                recent=jobs.recent_jobs(current_actor()))


@bp.get("/export-jobs/<int:job_id>/file")
@requires_role(*READERS)
def export_job_file(job_id: int):
    """The finished file, for the requester or an account that may see the requester's county."""
    job = jobs.get_job(job_id, current_actor())
    if job.state != "done" or not job.path:
        raise not_found("export file", job_id)
    response: Response = send_file(job.path, mimetype=MEDIA[job.fmt], as_attachment=True,
                                   download_name=f"{job.resource}-{job.id}.{job.fmt}")
    response.headers["Cache-Control"] = "no-store"
    return response
