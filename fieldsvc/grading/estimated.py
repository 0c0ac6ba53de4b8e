"""Estimated parcel grades inside the grading pass (DESIGN §4.6, §5 revised).

A whole-county run fits the variograms (``spatial.assess_county``), records them with the run,
and every parcel without a sample that has enough neighbours gets an ``estimated`` grade (its
own grade row, like a measured one). An incremental re-grade (a new approved result, a sample
edit) re-estimates only the unsampled parcels within ``search_radius_m`` of the changed
parcels, with the latest county run's models. Parcels with too few neighbours stay without a
grade row; the API shows them with ``basis: not_assessed``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select

from ..audit.services import canonical_json
from ..extensions import db
from ..places.models import Parcel
from . import estimation as es
from . import spatial
from .evaluation import Evaluated
from .models import GradingRun
from .rules import RulePack

_DEG_M = 111_320.0  # metres per degree of latitude (a generous bbox; distances are then exact)


def applies(pack: RulePack) -> bool:
    return pack.kind == "green_food_soil"


def to_evaluated(a: es.Assessment, pack: RulePack, models: Mapping[str, es.Model], land_use: str,
                 model_dicts: Mapping[str, Mapping[str, Any]] | None = None) -> Evaluated:
    """An estimated parcel's grade. ``model_dicts``: ``{analyte: model.to_dict()}`` made once for
    a county's parcels (each parcel's explanation records the models; they are the same for all)."""
    if model_dicts is None:
        model_dicts = {k: m.to_dict() for k, m in models.items()}
    rows = {k: dict(v) for k, v in a.analytes.items()}
    methods = sorted({r.get("method") for r in rows.values() if r.get("method")})
    explanation: dict[str, Any] = {
        "basis": a.basis, "land_use": land_use, "method": methods[0] if len(methods) == 1 else methods,
        "analytes": [{"analyte": k, **v} for k, v in rows.items()],
        "parameters": {"search_radius_m": pack.estimation.search_radius_m,
                       "min_neighbours": pack.estimation.min_neighbours, "z": pack.estimation.z},
        "models": {k: model_dicts[k] for k in sorted(models) if k in rows or k == "pH"},
        "strict_control": False,
    }
    limiting = sorted(k for k, v in rows.items() if v.get("verdict") != "qualified")
    neighbours = sorted({n["sample"] for v in rows.values() for n in v.get("neighbours", [])})
    fp = hashlib.sha256(canonical_json([pack.code, pack.version, explanation]).encode()).hexdigest()
    return Evaluated(a.verdict, None, a.verdict == "qualified", False, limiting, explanation, fp,
                     {"samples": [], "results": [], "excluded": [], "neighbours": neighbours}, None)


def run_models(run: GradingRun | None) -> dict[str, es.Model] | None:
    if run is None or not run.estimation:
        return None
    models = {k: es.Model.from_dict(v) for k, v in (run.estimation.get("models") or {}).items()}
    return models or None  # a run that had nothing to estimate fitted nothing


def latest_models(county: str, pack: RulePack) -> dict[str, es.Model] | None:
    run = db.session.scalar(select(GradingRun).where(
        GradingRun.county_code == county, GradingRun.rule_pack == pack.code, GradingRun.estimation.is_not(None))
        .order_by(GradingRun.id.desc()).limit(1))
    return run_models(run)


def for_county(county: str, pack: RulePack) -> tuple[dict[str, Evaluated], dict[str, Any]]:
    """A whole-county run: fit, estimate every unsampled parcel; (estimated grades, the record)."""
    if not spatial.has_unsampled(county):
        return {}, {"estimated": 0, "not_assessed": 0, "models": {}, "skipped": "every parcel has a usable sample"}
    data, res, models = spatial.assess_county(county, pack)
    if data is None:
        return {}, {}
    land_use = {p.code: p.land_use for p in data.parcels}
    dicts = {k: m.to_dict() for k, m in models.items()}
    out = {code: to_evaluated(a, pack, models, land_use[code], dicts) for code, a in res.items()
           if a.basis == es.ESTIMATED}
    record = {"epsg": data.projection.epsg, "samples": len(data.samples),
              "estimated": len(out), "not_assessed": sum(a.basis == es.NOT_ASSESSED for a in res.values()),
              "models": {k: m.to_dict() for k, m in sorted(models.items())}}
    return out, record


def around(parcel_codes: Iterable[str], pack: RulePack) -> tuple[set[str], dict[str, Evaluated]]:
    """Unsampled parcels within the search radius of these parcels, and their new estimates (with
    the latest county run's models; nothing before a county run has fitted them)."""
    codes = sorted(set(parcel_codes))
    if not codes or not applies(pack):
        return set(), {}
    rows = db.session.execute(select(Parcel.county_code, Parcel.min_lon, Parcel.min_lat, Parcel.max_lon,
                                     Parcel.max_lat).where(Parcel.code.in_(codes))).all()
    radius = pack.estimation.search_radius_m
    found: set[str] = set()
    estimates: dict[str, Evaluated] = {}
    by_county: dict[str, list[tuple]] = {}
    for r in rows:
        by_county.setdefault(r[0], []).append(r[1:])
    for county, boxes in by_county.items():
        models = latest_models(county, pack)
        if models is None:
            continue
        lat = (min(b[1] for b in boxes) + max(b[3] for b in boxes)) / 2
        margin = 3 * radius  # the parcels to re-estimate (2r) and the samples they use (r more)
        dlat = margin / _DEG_M
        dlon = margin / (_DEG_M * max(0.1, math.cos(math.radians(lat))))
        bbox = (min(b[0] for b in boxes) - dlon, min(b[1] for b in boxes) - dlat,
                max(b[2] for b in boxes) + dlon, max(b[3] for b in boxes) + dlat)
        if not spatial.has_unsampled(county, bbox):
            continue  # every parcel around has its own sample: nothing to re-estimate
        data = spatial.load_county(county, pack, bbox)
        if data is None:
            continue
        centre = {t.code: (t.x, t.y) for t in data.targets}
        changed = [centre[c] for c in codes if c in centre]
        land_use = {p.code: p.land_use for p in data.parcels}
        inner = 2 * radius  # parcels whose neighbourhood could include a changed parcel's samples
        # only those are valued (the box's other parcels are there for their samples): an estimate
        # depends on its own neighbours only, so this is the same answer for less work
        targets = [t for t in data.targets
                   if any(math.hypot(t.x - cx, t.y - cy) <= inner for cx, cy in changed)]
        res, used = es.assess(data.samples, targets, list(pack.data["analytes"]), spatial.limit_fn(pack),
                              pack.estimation, models)
        dicts = {k: m.to_dict() for k, m in used.items()}
        for code, a in res.items():
            if a.basis == es.MEASURED:
                continue
            found.add(code)
            if a.basis == es.ESTIMATED:
                estimates[code] = to_evaluated(a, pack, used, land_use[code], dicts)
    return found, estimates
