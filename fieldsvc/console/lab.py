"""The console's lab pages: the lab's workspace (upload, dry-run report, commit, imports with QC)
and the officials' review of results by import (exceedances highlighted, bulk approve/reject).

Routes hang on the console blueprint (``views.bp``) and follow its rules: thin, every route
declares its role, a service's refusal renders the console's error page. The upload checks are
the API's (``lab.views._uploaded_file``), the import is ``lab.services.import_results`` and bulk
review is ``lab.services.review_results``: these pages add no rule of their own.

Commit without a second upload: a dry run keeps the file under ``<instance>/lab-staging/`` named
by its SHA-256; the commit form sends only that hash, and the file is removed once imported.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app, request, url_for

from ..errors import Problem, validation_failed
from ..exports.schemas import ExportArgs
from ..exports.views import export_response
from ..http import current_actor, requires_role
from ..lab import services as lab
from ..lab.analytes import ANALYTES
from ..lab.schemas import BulkApproveIn, BulkRejectIn
from ..lab.views import _uploaded_file
from . import lab_queries as q
from .views import READERS, bp, done, lang, page
from .views import _t as words

LAB_DESK = ("lab", "official", "admin")  # who may open the workspace (reads as GET /api/v1/lab/imports)
IMPORTERS = ("lab", "official")  # as POST /api/v1/lab/imports
REVIEWERS = ("official",)  # as POST /api/v1/lab/results/approve|reject
IMPORTS_PAGE = 50
ZONE = ZoneInfo("Asia/Shanghai")  # every county fieldsvc serves keeps China Standard Time
SHA = re.compile(r"^[0-9a-f]{64}$")


# --- formatting for these pages -------------------------------------------------------------

@bp.app_template_filter("console_local")
def local_time(value: datetime | None) -> str:
    """A stored UTC time in the county's zone, to the minute."""
    if value is None:
        return "—"
    return value.astimezone(ZONE).strftime("%Y-%m-%d %H:%M")


def analyte_label(key: str) -> str:
    a = ANALYTES.get(key)
    if a is None:
        return key
    name = a.name_zh if lang() == "zh" else a.name_en
    return key if name == key else f"{name} ({key})"


def plain(value: Decimal | None, places: int | None = None) -> str:
    """A decimal as people write it: a limit without trailing zeros, an index to ``places``."""
    if value is None:
        return "—"
    if places is not None:
        return f"{value:.{places}f}"
    return f"{value.normalize():f}"


def _helpers() -> dict[str, Any]:
    return {"analyte": analyte_label, "plain": plain, "local": local_time}


# --- the lab's workspace --------------------------------------------------------------------

def _staging() -> Path:
    path = Path(current_app.instance_path) / "lab-staging"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


@bp.get("/lab")
@requires_role(*LAB_DESK)
def lab_home():
    """Upload a results file (checked first), and the imports with their QC state, newest first."""
    before = request.args.get("before")
    before_id = int(before) if before and before.isdigit() and len(before) < 18 else None
    imports, older = q.imports_page(_actor(), before_id, IMPORTS_PAGE)
    return page("lab.html", nav="lab", imports=imports, older=older, qc_state=q.qc_state,
                counts=q.status_counts(_actor(), [i.id for i in imports]), **_helpers())


@bp.post("/lab/check")
@requires_role(*IMPORTERS)
def lab_check():
    """The dry run: the report as tables; nothing is imported until the commit button."""
    data, filename = _uploaded_file()
    lab_name = (request.form.get("lab") or "").strip()
    if len(lab_name) > 120:
        raise validation_failed({"lab": ["at most 120 characters"]})
    report = lab.import_results(data, filename, _actor(), lab=lab_name or None, dry_run=True).report
    staged = None
    if not report["error_count"] and not report.get("already_imported"):
        staged = report["sha256"]
        (_staging() / f"{staged}.bin").write_bytes(data)
        (_staging() / f"{staged}.json").write_text(json.dumps({"filename": filename, "lab": lab_name}))
    return page("lab_check.html", nav="lab", report=report, staged=staged, **_helpers())


@bp.post("/lab/commit")
@requires_role(*IMPORTERS)
def lab_commit():
    """Import the file the dry run checked (all or nothing, as the API)."""
    sha = request.form.get("sha256", "")
    if not SHA.match(sha) or not (_staging() / f"{sha}.bin").is_file():
        raise Problem(409, "not_staged", "This file is no longer waiting to be committed; upload it again.",
                      fields={"sha256": ["not staged"]})
    body, meta = _staging() / f"{sha}.bin", _staging() / f"{sha}.json"
    info = json.loads(meta.read_text()) if meta.is_file() else {}
    outcome = lab.import_results(body.read_bytes(), info.get("filename") or "upload.csv", _actor(),
                                 lab=info.get("lab") or None)
    lab_import = outcome.lab_import
    body.unlink(missing_ok=True)
    meta.unlink(missing_ok=True)
    message = words("import_committed" if outcome.created else "import_was_there", id=lab_import.id,
                    n=f"{lab_import.rows:,}")
    return done(message, url_for("console.lab_import", import_id=lab_import.id))


@bp.get("/lab/imports/<int:import_id>")
@requires_role(*LAB_DESK)
def lab_import(import_id: int):
    """One import: counts, QC items (pass or fail), warnings, held bag codes, review progress."""
    lab_import = lab.get_import(import_id, _actor())
    counts = q.status_counts(_actor(), [import_id])[import_id]
    return page("lab_import.html", nav="lab", imp=lab_import, outcomes=lab_import.outcomes or {},
                qc_state=q.qc_state(lab_import), counts=counts, **_helpers())


# --- the officials' review --------------------------------------------------------------------

@bp.get("/review")
@requires_role(*READERS)
def review():
    """Results to review, grouped by import (one import is one QC batch); one import's rows at a time."""
    actor = _actor()
    pending = q.imports_with_pending(actor)
    chosen = request.args.get("import")
    import_id = int(chosen) if chosen and chosen.isdigit() and len(chosen) < 18 else (
        pending[0][0].id if pending else None)
    after = request.args.get("after")
    rows, more = ([], None)
    current = None
    if import_id is not None:
        current = lab.get_import(import_id, actor)
        rows, more = q.review_rows(actor, import_id, int(after) if after and after.isdigit() else None)
    total = dict((i.id, n) for i, n in pending).get(import_id or -1, 0)
    return page("review.html", nav="review", pending=pending, current=current, rows=rows, more=more,
                total=total, select_all=request.args.get("all") == "1",
                approvals_required=current_app.config["LAB_APPROVALS_REQUIRED"], **_helpers())


def _bulk_request() -> tuple[str, list[str], int | None, str | None]:
    form = request.form
    action = form.get("action", "")
    if action not in ("approve", "reject"):
        raise validation_failed({"action": ["one of approve, reject"]})
    import_id = form.get("import_id", "")
    if not import_id.isdigit() or len(import_id) > 18:
        raise validation_failed({"import_id": ["an import id"]})
    reason = (form.get("reason") or "").strip() or None
    if form.get("scope") == "import":
        ids = q.reviewable_ids(_actor(), int(import_id))
        if not ids:
            raise validation_failed({"scope": ["this import has nothing left to review"]})
    else:
        ids = form.getlist("ids")
        if not ids:
            raise validation_failed({"ids": [words("tick_some")]})
    schema = BulkApproveIn() if action == "approve" else BulkRejectIn()
    data = schema.load({"ids": ids, "reason": reason} if reason or action == "reject" else {"ids": ids})
    return action, data["ids"], int(import_id), data.get("reason")


@bp.post("/review/confirm")
@requires_role(*REVIEWERS)
def review_confirm():
    """Say what the bulk action will do, and ask once more (no script: a page with two buttons)."""
    action, ids, import_id, reason = _bulk_request()
    return page("review_confirm.html", nav="review", action=action, ids=ids, imp=lab.get_import(import_id, _actor()),
                reason=reason, scope=request.form.get("scope"), count=len(ids), **_helpers())


@bp.post("/review/apply")
@requires_role(*REVIEWERS)
def review_apply():
    """One request, one transaction: every id judged alone; the refused ones are counted by reason."""
    if request.form.get("confirmed") != "1":
        raise validation_failed({"confirmed": ["confirm the action first"]})
    action, ids, import_id, reason = _bulk_request()
    outcome = lab.review_results(action, ids, _actor(), reason=reason,
                                 approvals_required=current_app.config["LAB_APPROVALS_REQUIRED"])
    refused: dict[str, int] = {}
    for item in outcome.items:
        if "code" in item:
            refused[item["code"]] = refused.get(item["code"], 0) + 1
    why = "; ".join(f"{words('refusal_' + code)} {n:,}" for code, n in sorted(refused.items()))
    message = words("bulk_done_" + action, n=f"{outcome.done:,}")
    if refused:
        message += " " + words("bulk_refused", n=f"{outcome.refused:,}", why=why)
    return done(message, url_for("console.review", import_id=None, **{"import": import_id}))


# --- downloads (the exports API, with the console's session) ------------------------------------

@bp.get("/exports/<any(samples,results,grades,certificates):resource>.<any(xlsx,csv,geojson,gpkg):fmt>")
@requires_role(*LAB_DESK)
def export_file(resource: str, fmt: str):
    """The same files as ``GET /api/v1/exports/...`` (same filters, roles and scoping), for a signed-in page."""
    args = ExportArgs().load(request.args.to_dict(flat=True) | {"lang": lang()})
    return export_response(resource, fmt, args, _actor())


def _actor() -> Any:
    return current_actor()
