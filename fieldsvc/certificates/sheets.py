"""Label sheets: printing made once, fetched as often as needed. Flush, never commit.

A label sheet is created by a POST (``POST /api/v1/label-sheets``, the console's confirmed print):
that one request counts its labels against each certificate's quota (409 ``quota_exceeded``
unless an audited override) and creates its serials. Its PDF is then a plain read: fetched again
(a retry, a re-opened tab, a jammed printer) it prints the same serials and counts nothing. A
retried POST with the same ``Idempotency-Key`` returns the same sheet; the same key with a
different request is a 409, never a second sheet.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select

from .. import access
from ..audit.services import Change, record
from ..auth.principal import Actor
from ..dbtypes import isoformat
from ..dbutil import lock_for_transaction
from ..errors import conflict, not_found
from ..extensions import db
from . import codes, pdf, services
from .models import Certificate, LabelSerial, LabelSheet


def request_digest(code_list: Sequence[str], serials: int, template: str, start_slot: int,
                   override_reason: str | None) -> str:
    """What an Idempotency-Key stands for: the same key must come with the same request."""
    text = json.dumps([list(code_list), serials, template, start_slot, override_reason], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def create_sheet(code_list: Sequence[str], template: str, start_slot: int, serials: int,
                 override_reason: str | None, actor: Actor, config: Mapping[str, Any],
                 idempotency_key: str | None = None) -> tuple[LabelSheet, bool]:
    """Make a sheet once: ``(sheet, created)``; a retry with the same key returns the first one.

    ``serials`` = N prints N serialised labels per listed code (a code listed twice gets 2N),
    counted against the quotas here, and only here.

    :raise 409 idempotency_key_reused: the key was used for another request.
    :raise 409 quota_exceeded: naming each certificate's printed, quota and asked (no override given).
    :raise 409 certificate_not_valid / 422: as for any label print.
    """
    digest = request_digest(code_list, serials, template, start_slot, override_reason)
    if idempotency_key:
        lock_for_transaction(f"label-sheet:{idempotency_key}")  # a concurrent retry waits, then finds it
        earlier = db.session.scalar(select(LabelSheet).where(LabelSheet.idempotency_key == idempotency_key))
        if earlier is not None:
            if earlier.request_sha256 != digest:
                raise conflict("idempotency_key_reused", "This Idempotency-Key was used for another label sheet.",
                               sheet=earlier.id)
            _require_visible(earlier, actor)
            return earlier, False
    found = services.printable(code_list, template, actor, config, serials)
    services.count_against_quota(found, code_list, max(serials, 1), actor, override_reason)
    labels = len(code_list) * max(serials, 1)
    sheet = LabelSheet(idempotency_key=idempotency_key, request_sha256=digest,
                       codes_json=json.dumps(list(code_list)), serials_per_code=serials, template=template,
                       start_slot=start_slot, labels=labels, override_reason=override_reason,
                       created_at=services.now(), created_by=actor.label)
    db.session.add(sheet)
    db.session.flush()
    if serials:
        services.print_serials([found[c] for c in code_list], serials, actor, sheet.id)
    record(actor.label, Change("label_sheet", str(sheet.id), "create", after={
        "codes": sorted(set(code_list)), "serials_per_code": serials, "labels": labels,
        "override_reason": override_reason}))
    return sheet, True


def get_sheet(sheet_id: int, actor: Actor) -> LabelSheet:
    """A sheet by id; one with a certificate the account may not see is absent to it."""
    sheet = db.session.get(LabelSheet, sheet_id)
    if sheet is None:
        raise not_found("label_sheet", str(sheet_id))
    _require_visible(sheet, actor)
    return sheet


def _require_visible(sheet: LabelSheet, actor: Actor) -> None:
    counties = set(db.session.scalars(select(Certificate.county_code).where(
        Certificate.code.in_(sorted(set(codes_of(sheet)))))))
    if not all(access.may_see_record(actor, c) for c in counties):
        raise not_found("label_sheet", str(sheet.id))


def codes_of(sheet: LabelSheet) -> list[str]:
    return list(json.loads(sheet.codes_json))


def sheet_labels(sheet: LabelSheet) -> list[tuple[str, str]]:
    """``(code, serial)`` in print order: the serials it created, read back by id; plain: the codes."""
    if not sheet.serials_per_code:
        return [(c, "") for c in codes_of(sheet)]
    rows = db.session.execute(select(Certificate.code, LabelSerial.serial)
                              .join(Certificate, Certificate.id == LabelSerial.certificate_id)
                              .where(LabelSerial.sheet_id == sheet.id).order_by(LabelSerial.id))
    return [(c, s) for c, s in rows]


def sheet_pdf(sheet: LabelSheet, actor: Actor, config: Mapping[str, Any], template: str | None = None,
              start_slot: int | None = None) -> bytes:
    """The sheet's labels, the same serials every time; another template or start slot reprints them
    on another sheet of paper. Counts nothing; a certificate no longer valid is a 409 (as at printing)."""
    template = template or sheet.template
    start = sheet.start_slot if start_slot is None else start_slot
    found = services.printable(codes_of(sheet), template, actor, config)
    return pdf.render_labels(services.label_views(found, sheet_labels(sheet), config), template, start)


def sheet_dict(sheet: LabelSheet, config: Mapping[str, Any], with_labels: bool = True) -> dict[str, Any]:
    """The sheet as JSON: what it prints, who made it and when, and (``with_labels``) every label."""
    code_list = codes_of(sheet)
    certs = {c.code: c for c in db.session.scalars(select(Certificate).where(
        Certificate.code.in_(sorted(set(code_list)))))}
    body: dict[str, Any] = {
        "id": sheet.id, "codes": code_list, "serials_per_code": sheet.serials_per_code,
        "template": sheet.template, "start_slot": sheet.start_slot, "labels": sheet.labels,
        "override_reason": sheet.override_reason, "created_at": isoformat(sheet.created_at),
        "created_by": sheet.created_by, "pdf_url": f"/api/v1/label-sheets/{sheet.id}.pdf",
        "quotas": {c: {"printed": cert.labels_printed, "quota": cert.label_quota} for c, cert in sorted(certs.items())},
    }
    if with_labels:
        base = config["PUBLIC_BASE_URL"]
        body["items"] = [{"code": c, "serial": s or None,
                          "url": codes.serial_url(base, c, s) if s else codes.verify_url(base, c)}
                         for c, s in sheet_labels(sheet)]
    return body


def preview(code_list: Sequence[str], template: str, serials: int, actor: Actor,
            config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What a print would do, per certificate, before it is confirmed: printed / quota now and after."""
    found = services.printable(code_list, template, actor, config, serials)
    asked: dict[str, int] = {}
    for c in code_list:
        asked[c] = asked.get(c, 0) + max(serials, 1)
    rows = []
    for c, n in asked.items():
        cert = found[c]
        after = cert.labels_printed + n
        rows.append({"code": c, "subject_type": cert.subject_type, "subject_code": cert.subject_code,
                     "printed": cert.labels_printed, "quota": cert.label_quota, "asked": n, "after": after,
                     "over": cert.label_quota is not None and after > cert.label_quota})
    return rows
