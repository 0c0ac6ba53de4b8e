"""The console's label printing: choose, confirm (printed / quota shown), print once, download as often as needed.

Printing counts labels against each certificate's quota and creates serials, which cannot be
undone; so the print form only opens a confirmation page (a GET that changes nothing) saying,
per certificate, printed / quota now and after. Its button POSTs with a key made for that page,
so a double submit or a browser retry makes one sheet (``certificates.sheets.create_sheet``);
the sheet's PDF is then a plain download, the same serials every time.
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import current_app, request, url_for

from ..certificates import codes as cert_codes
from ..certificates import pdf as cert_pdf
from ..certificates import services as certs
from ..certificates import sheets
from ..certificates.schemas import LabelSheetIn
from ..http import current_actor, requires_role
from .views import ACT, _form, _pdf, bp, done, page
from .views import _t as words


def _print_request(source: Any) -> dict[str, Any]:
    """The print form's fields (codes repeated or comma separated), checked by the API's schema."""
    raw = {"codes": ",".join(source.getlist("codes")), "template": source.get("template") or "a4_3x7",
           "start_slot": source.get("start_slot") or "0", "serials": source.get("serials") or "0"}
    if (source.get("override_reason") or "").strip():
        raw["override_reason"] = source["override_reason"].strip()
    data = LabelSheetIn().load(raw)
    data["code_list"] = certs.parse_codes(data["codes"], current_app.config["LABELS_MAX_CODES"])
    return data


@bp.get("/label-sheets/new")
@requires_role(*ACT)
def label_sheet_confirm():
    """Say what printing will count, per certificate (printed / quota now and after), and ask once more."""
    data = _print_request(request.args)
    rows = sheets.preview(data["code_list"], data["template"], data["serials"], current_actor(), current_app.config)
    return page("label_sheet_confirm.html", nav="certificates", rows=rows, data=data,
                total=sum(r["asked"] for r in rows), over=any(r["over"] for r in rows),
                key=secrets.token_urlsafe(16), format_code=cert_codes.format_code)


@bp.post("/label-sheets")
@requires_role(*ACT)
def create_label_sheet():
    """Print once: the confirmed sheet (a retry of this form returns the same sheet)."""
    form = _form()
    data = _print_request(request.form)
    key = (form.get("idempotency_key") or "").strip()[:80] or None
    sheet, _ = sheets.create_sheet(data["code_list"], data["template"], data["start_slot"], data["serials"],
                                   data["override_reason"], current_actor(), current_app.config, key)
    return done(words("sheet_ok", n=f"{sheet.labels:,}"), url_for("console.label_sheet", sheet_id=sheet.id))


@bp.get("/label-sheets/<int:sheet_id>")
@requires_role(*ACT)
def label_sheet(sheet_id: int):
    """One printed sheet: what it holds, who printed it when, printed / quota now, its PDF (same serials)."""
    sheet = sheets.get_sheet(sheet_id, current_actor())
    body = sheets.sheet_dict(sheet, current_app.config)
    templates = cert_pdf.label_templates()
    return page("label_sheet.html", nav="certificates", sheet=body, templates=templates, items=body["items"][:200],
                format_code=cert_codes.format_code)


@bp.get("/label-sheets/<int:sheet_id>.pdf")
@requires_role(*ACT)
def label_sheet_pdf(sheet_id: int):
    """The sheet's labels again (another template or start slot: another part-used sheet of paper)."""
    sheet = sheets.get_sheet(sheet_id, current_actor())
    template = request.args.get("template") or None
    start = request.args.get("start_slot")
    start_slot = int(start) if start and start.isdigit() else None
    body = sheets.sheet_pdf(sheet, current_actor(), current_app.config, template, start_slot)
    return _pdf(body, f"label-sheet-{sheet.id}.pdf", attachment=True)
