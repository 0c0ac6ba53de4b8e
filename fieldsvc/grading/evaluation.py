"""Evaluating one parcel from its inputs, and rebuilding a stored grade's full explanation."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import date
from functools import cache
from typing import Any, NamedTuple

import orjson
from sqlalchemy import select

from ..audit.services import canonical_json
from ..errors import Problem
from ..extensions import db
from ..lab.models import LabResult
from ..samples.models import Sample
from .grade import Measurement, SampleInput, classify_gb15618, evaluate, gb15618_class
from .inputs import CHUNK, ParcelInputs, _dec
from .models import Grade
from .rules import RulePack, load_pack

GB_PACK = "gb15618_2018"
NOT_ASSESSED = "not_assessed"  # a parcel without a usable measured or estimated value (DESIGN §4.6)


@cache  # a handful of reasons; a county run asks once per unsampled parcel
def not_assessed_fingerprint(reason: str) -> str:
    """The fingerprint of a not-assessed parcel: its reason only.

    Rows stored before the rename say ``not_graded`` (readers accept both, ``queries.LEGACY_NOT_ASSESSED``);
    the next run over such a parcel supersedes its row with a ``not_assessed`` one, keeping the old version."""
    return hashlib.sha256(canonical_json([NOT_ASSESSED, reason]).encode()).hexdigest()


class StoredExplanation(dict):
    """An estimated parcel's explanation as a county run stores it: ``text``, its JSON, made once
    (the fingerprint hashes it and the grades column stores it as it is). The dict itself holds
    only ``basis`` (what the grading pass reads before writing): a county run makes a million of
    these, and keeping only the text spares the collector a dozen tracked objects a parcel
    (``estimated.stored``). ``full()``: the explanation as a dict."""

    __slots__ = ("text",)

    def full(self) -> dict[str, Any]:
        return orjson.loads(self.text)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its basis and text (a worker sends a million of them to the run): a dict
        subclass with slots otherwise pickles through copyreg, its items and its slot state."""
        return _stored_explanation, (self.get("basis"), self.text)


def _stored_explanation(basis: str | None, text: str) -> StoredExplanation:
    made = StoredExplanation(basis=basis)
    made.text = text
    return made


class Evaluated(NamedTuple):
    """One parcel's evaluation (a named tuple: a county run moves a million of them between processes).

    ``explanation`` and ``limiting`` may be shared with other parcels: read only. ``inputs`` is the
    dict, or, from a worker process (``parallel._chunk_worker``), its JSON text as the column binds it.
    """

    verdict: str  # qualified | not_qualified | indeterminate | needs_sampling | not_assessed
    grade: str | None
    qualified: bool
    strict_control: bool
    limiting: list[str]
    explanation: dict[str, Any]
    fingerprint: str
    inputs: dict[str, Any] | str
    tested_on: date | None

    @property
    def graded(self) -> bool:
        return self.verdict != NOT_ASSESSED


def _not_assessed(reason: str, inputs: ParcelInputs | None) -> Evaluated:
    """No usable measured value (DESIGN §5: the parcel is ``not_assessed``, never failed)."""
    excluded = inputs.excluded if inputs else []
    return Evaluated(NOT_ASSESSED, None, False, False, [], {"reason": reason, "excluded_samples": excluded},
                     not_assessed_fingerprint(reason),
                     {"samples": [], "results": [], "excluded": excluded}, None)


def evaluate_parcel(pack: RulePack, land_use: str, inputs: ParcelInputs | None, deleted: bool = False,
                    gb_pack: RulePack | None = None) -> Evaluated:
    """Grade one parcel; strict control (which caps an area at C) comes from GB 15618 when it can matter.

    A parcel that qualifies under the green-food pack cannot be strict-control, because every
    green-food limit is below the GB 15618 intervention value (a unit test holds the packs to
    that), so GB 15618 is consulted only for parcels that do not qualify.
    """
    if deleted:
        return _not_assessed("parcel_deleted", inputs)
    if inputs is None or not inputs.samples:
        return _not_assessed("no_approved_results", inputs)
    samples = inputs.samples
    res = evaluate(pack, land_use, samples)
    fp = res.fingerprint
    strict = False
    explanation: dict[str, Any] = {"land_use": land_use}
    if pack.kind == "gb15618":
        strict = res.strict_control  # type: ignore[union-attr]
    elif not res.qualified:
        gb_grade, gb_fp = gb15618_class(land_use, samples, gb_pack or load_pack(GB_PACK))
        strict = gb_grade == "strict_control"  # ClassGrade.strict_control: certain strict control only
        explanation["gb15618_class"] = gb_grade
        fp = hashlib.sha256(f"{fp}|{gb_fp}".encode()).hexdigest()
    explanation["strict_control"] = strict
    explanation["excluded_samples"] = inputs.excluded
    if not inputs.excluded:  # most parcels: one shared object per distinct explanation (cheap to bind)
        explanation = _shared(explanation, (land_use, "gb15618_class" in explanation,
                                            explanation.get("gb15618_class"), strict))
    used = {"samples": sorted([s.sample_id for s in samples]), "results": sorted(map(str, inputs.result_ids)),
            "excluded": inputs.excluded}
    limiting = _shared(list(res.limiting), res.limiting)
    return Evaluated(res.verdict, res.grade, res.qualified, strict, limiting, explanation, fp, used,
                     inputs.tested_on)


_SHARED: dict[Any, Any] = {}  # explanations and limiting lists many parcels share (read-only by contract)


def _shared(value: Any, key: Any) -> Any:
    """The one object kept for ``key`` (``value`` itself the first time): a county run binds few
    distinct explanations, and the row writer processes each distinct object once."""
    key = (type(value), key)
    got = _SHARED.get(key)
    if got is None:
        if len(_SHARED) >= 10_000:
            _SHARED.clear()
        got = _SHARED[key] = value
    return got


def explain_inputs(g: Grade) -> tuple[dict[str, Any], dict[str, Any]]:
    """A parcel grade's explanation and inputs as shown: an estimated grade's neighbour sets
    resolved to the samples' codes, distances and values (``estimated.expand``)."""
    stored = g.explanation or {}
    if stored.get("basis") == "estimated" and "neighbour_sets" in stored:
        from .estimated import expand

        return expand(stored, g.inputs, g.county_code, g.rule_pack)
    return explain(g), g.inputs


def explain(g: Grade) -> dict[str, Any]:
    """A parcel grade's full explanation, rebuilt from the exact result rows it used.

    Stored parcel rows keep only what cannot be recomputed (excluded samples, strict control):
    result rows are immutable and packs are versioned, so the engine gives the same per-analyte
    rows again. ``reproduced`` says whether the rebuilt fingerprint equals the stored one.
    """
    stored = dict(g.explanation or {})
    if stored.get("basis") == "estimated" and "neighbour_sets" in stored:  # stored compactly: resolve
        return explain_inputs(g)[0]
    ids = [int(i) for i in (g.inputs or {}).get("results", [])]
    if g.subject_type != "parcel" or not ids:
        return stored
    codes = dict(db.session.execute(select(Sample.id, Sample.code).where(
        Sample.id.in_((g.inputs or {}).get("samples", [])))).all())
    per_sample: dict[str, dict[str, Measurement]] = defaultdict(dict)
    for start in range(0, len(ids), CHUNK):
        for r in db.session.scalars(select(LabResult).where(LabResult.id.in_(ids[start:start + CHUNK]))):
            per_sample[r.sample_id][r.analyte] = Measurement(r.analyte, r.qualifier, _dec(r.value),
                                                             _dec(r.detection_limit), r.unit)
    samples = [SampleInput(sid, codes.get(sid, ""), m) for sid, m in sorted(per_sample.items())]
    try:
        pack = load_pack(g.rule_pack, g.rule_pack_version)
    except Problem:
        return stored | {"reproduced": False, "reason": "rule pack version no longer available"}
    res = evaluate(pack, stored.get("land_use") or "", samples) if stored.get("land_use") else None
    if res is None:
        return stored
    d = res.to_dict()
    fp = res.fingerprint
    if "gb15618_class" in stored and pack.kind != "gb15618":
        fp = hashlib.sha256(f"{fp}|{classify_gb15618(res.land_use, samples, load_pack(GB_PACK)).fingerprint}"
                            .encode()).hexdigest()
    extra = {k: v for k, v in d.items() if k not in ("verdict", "qualified", "grade", "limiting", "pack",
                                                    "fingerprint", "explanation", "land_use")}
    analytes = [{**row, "basis": "measured"} for row in d["explanation"]]
    return {"analytes": analytes, **extra, **stored, "basis": "measured", "reproduced": fp == g.fingerprint}
