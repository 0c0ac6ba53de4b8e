"""Rule-pack administration: resolving a pack code, how a pack is shown on a grade, and
an admin's verification of a pack's values (CLI ``rule-packs verify``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from ..audit.services import Change, record
from ..auth.principal import SYSTEM, Actor
from ..auth.services import get_user_by_username
from ..dbtypes import isoformat
from ..errors import Problem, validation_failed
from ..extensions import db
from .models import RulePackVerification
from .rules import DEFAULT_PACK, RulePack, list_packs, load_pack

UNVERIFIED_NOTE = ("The values of this rule pack have not yet been checked against the official standard "
                   "text; treat grades made with it as provisional.")
UNVERIFIED_NOTE_ZH = "本规则包的限值尚未与官方标准文本核对，据此作出的评价仅供参考。"


def resolve_pack(code: str | None) -> RulePack:
    """The newest version of a pack; an unknown code is a 422 naming ``rule_pack``."""
    try:
        return load_pack(code or DEFAULT_PACK)
    except Problem as exc:
        if exc.status == 404:
            known = sorted({p.code for p in list_packs()})
            raise validation_failed({"rule_pack": [f"unknown rule pack {code!r}; known: {', '.join(known)}"]}) \
                from None
        raise


def _verifications() -> dict[tuple[str, str], RulePackVerification]:
    return {(v.rule_pack, v.rule_pack_version): v for v in db.session.scalars(select(RulePackVerification))}


def pack_ref(code: str, version: str, verifications: Mapping | None = None) -> dict[str, Any]:
    """``{code, version, verified}`` (plus a note when not verified): what every grade shows."""
    verifications = _verifications() if verifications is None else verifications
    try:
        pack = load_pack(code, version)
        verified = pack.verified or (code, version) in verifications
        standard = pack.standard
    except Problem:  # a version no longer shipped: history stays readable
        verified, standard = (code, version) in verifications, None
    ref: dict[str, Any] = {"code": code, "version": version, "verified": verified, "standard": standard}
    if not verified:
        ref["note"] = UNVERIFIED_NOTE
        ref["note_zh"] = UNVERIFIED_NOTE_ZH
    return ref


def rule_pack_list() -> list[dict[str, Any]]:
    verifications = _verifications()
    items = []
    for pack in list_packs():
        item = pack.to_summary()
        v = verifications.get((pack.code, pack.version))
        item["verified"] = pack.verified or v is not None
        item["verified_by"] = v.verified_by if v else None
        item["verified_at"] = isoformat(v.verified_at) if v else None
        if not item["verified"]:
            item["note"] = UNVERIFIED_NOTE
        items.append(item)
    return items


def verify_rule_pack(code: str, by: str, version: str | None = None, note: str | None = None,
                     actor: Actor = SYSTEM) -> RulePackVerification:
    """An admin states that the pack's values match the official text (CLI ``rule-packs verify``)."""
    pack = load_pack(code, version)
    user = get_user_by_username(by)
    if user is None or user.role != "admin":
        raise validation_failed({"by": [f"{by!r} is not an admin account; only an admin may verify a pack"]})
    existing = db.session.scalar(select(RulePackVerification).where(
        RulePackVerification.rule_pack == pack.code, RulePackVerification.rule_pack_version == pack.version))
    if existing is not None:
        return existing
    row = RulePackVerification(rule_pack=pack.code, rule_pack_version=pack.version, verified_by=by, note=note)
    db.session.add(row)
    db.session.flush()
    record(actor.label, Change("rule_pack", f"{pack.code}@{pack.version}", "verify",
                               before={"verified": pack.verified}, after={"verified": True, "by": by, "note": note}))
    return row
