"""Estimated parcel grades inside the grading pass (DESIGN §4.6, §5 revised).

A whole-county run fits the variograms (``spatial.assess_county``), records them with the run,
and every parcel without a sample that has enough neighbours gets an ``estimated`` grade (its
own grade row, like a measured one), stored compactly: estimates, σ, bounds and verdicts per
analyte and the parcel's neighbour sets (codes and distances) once (``to_evaluated``); one parcel
read is expanded with its neighbours' values and the run's models (``expand``). An incremental
re-grade (a new approved result, a sample edit) re-estimates, with the latest county run's
models, only the parcels whose neighbour sets name a changed sample or would now take it in
(``around``). Parcels with too few neighbours stay without a grade row; the API shows them with
``basis: not_assessed``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import orjson
from sqlalchemy import Text, cast, select

from ..audit.services import canonical_json
from ..extensions import db
from ..places.models import Parcel
from ..samples.models import Sample
from . import estimation as es
from . import spatial
from .evaluation import Evaluated
from .models import Grade, GradingRun
from .rules import RulePack

_DEG_M = 111_320.0  # metres per degree of latitude (a generous bbox; distances are then exact)


def applies(pack: RulePack) -> bool:
    return pack.kind == "green_food_soil"


class StoredExplanation(dict):
    """An estimated parcel's stored explanation (a dict) with ``text``: its JSON, encoded once (the
    fingerprint hashes it and the grades column stores it as it is)."""

    __slots__ = ("text",)


_NO_INPUTS: dict[str, Any] = {"samples": [], "results": [], "excluded": []}  # shared by every estimated parcel


def models_digest(model_dicts: Mapping[str, Mapping[str, Any]]) -> str:
    """A short digest of a run's models (``{analyte: Model.to_dict()}``): what an estimated grade
    names instead of copying them, so a re-run that fits the same models keeps its grades."""
    return hashlib.sha256(canonical_json(dict(model_dicts)).encode()).hexdigest()[:16]


def to_evaluated(a: es.Assessment, pack: RulePack, land_use: str, digest: str) -> Evaluated:
    """An estimated parcel's grade, stored compactly (decision A of issue 14):

    per analyte its estimate, σ, bounds, limit, method, verdict and reason, and the index of its
    neighbour set in ``neighbour_sets`` (``{"samples": [codes], "distance_m": [m]}``, nearest
    first: one set when every analyte and pH used the same samples, more only where eligibility
    differs); ``exceeding`` names the neighbours over their own limit (precaution). The
    neighbours' values and the models (``models_digest`` names the run's) are resolved when one
    parcel is read (``expand``). The JSON text is made once: the fingerprint hashes it."""
    sets: list[Mapping[str, list]] = []

    def ref(nb: Mapping[str, list]) -> int:
        for j, known in enumerate(sets):
            if known is nb or known == nb:
                return j
        sets.append(nb)
        return len(sets) - 1

    rows = []
    methods = set()
    for k, v in a.analytes.items():
        row: dict[str, Any] = {"analyte": k}
        for key, val in v.items():
            if key == "neighbours":
                row["neighbour_set"] = ref(val)
            else:
                row[key] = val
        if v.get("method"):
            methods.add(v["method"])
        rows.append(row)
    ordered = sorted(methods)
    explanation = StoredExplanation(
        basis=a.basis, land_use=land_use, method=ordered[0] if len(ordered) == 1 else ordered, analytes=rows,
        ph_neighbour_set=ref(a.ph_neighbours) if a.ph_neighbours is not None else None, neighbour_sets=sets,
        parameters={"search_radius_m": pack.estimation.search_radius_m,
                    "min_neighbours": pack.estimation.min_neighbours, "z": pack.estimation.z},
        models_digest=digest, strict_control=False)
    explanation.text = orjson.dumps(explanation).decode()
    fp = hashlib.sha256(f"{pack.code}\n{pack.version}\n{explanation.text}".encode()).hexdigest()
    limiting = sorted(k for k, v in a.analytes.items() if v.get("verdict") != "qualified")
    return Evaluated(a.verdict, None, a.verdict == "qualified", False, limiting, explanation, fp, _NO_INPUTS, None)


def neighbour_codes(explanation: Mapping[str, Any] | None) -> list[str]:
    """The distinct samples an estimated grade's explanation names (stored or expanded form)."""
    explanation = explanation or {}
    sets = explanation.get("neighbour_sets")
    if sets is not None:
        return sorted({c for nb in sets for c in nb.get("samples", ())})
    return sorted({n.get("sample") for r in explanation.get("analytes") or [] for n in r.get("neighbours") or []})


def expand(explanation: Mapping[str, Any], inputs: Mapping[str, Any] | None, county: str | None,
           pack_code: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A stored estimated grade as the API, console and reports show one parcel (DESIGN §4.6):
    each analyte names its neighbours with their distances, values and whether they exceed, and
    the models; ``inputs.neighbours`` lists the samples. The values are read from the samples
    (a change to any of them re-grades this parcel, so they are the ones it was valued from)."""
    sets = explanation.get("neighbour_sets")
    if explanation.get("basis") != es.ESTIMATED or sets is None:
        return dict(explanation), dict(inputs or {})
    codes = neighbour_codes(explanation)
    values = _sample_values(codes)
    empty: Mapping[str, list] = {"samples": [], "distance_m": []}
    rows = []
    for r in explanation.get("analytes") or []:
        row = {k: v for k, v in r.items() if k not in ("neighbour_set", "exceeding")}
        j = r.get("neighbour_set")
        nb = sets[j] if j is not None and j < len(sets) else empty
        hot = set(r.get("exceeding") or ())
        analyte = r.get("analyte")
        row["neighbours"] = [{"sample": c, "distance_m": d, "value": es._sig(values.get(c, {}).get(analyte)),
                              "exceeds": c in hot}
                             for c, d in zip(nb["samples"], nb["distance_m"], strict=True)]
        rows.append(row)
    out = {k: v for k, v in explanation.items()
           if k not in ("neighbour_sets", "ph_neighbour_set", "models_digest")}
    out["analytes"] = rows
    out["models"] = _models_named(county, pack_code, explanation.get("models_digest"))
    return out, dict(inputs or {}) | {"neighbours": codes}


def _sample_values(codes: Sequence[str]) -> dict[str, dict[str, float]]:
    """The values by analyte of these samples as an estimation reads them (usable samples only)."""
    from .inputs import CHUNK, load_inputs

    parcels: set[str] = set()
    for start in range(0, len(codes), CHUNK):
        parcels.update(c for c in db.session.scalars(select(Sample.parcel_code).where(
            Sample.code.in_(codes[start:start + CHUNK]))) if c)
    wanted = set(codes)
    out: dict[str, dict[str, float]] = {}
    for pi in load_inputs(sorted(parcels)).values():
        for s in pi.samples:
            if s.sample_code in wanted:
                out[s.sample_code] = {a: v for a, m in s.measurements.items() if (v := spatial._value(m)) is not None}
    return out


def _models_named(county: str | None, pack_code: str, digest: str | None) -> dict[str, Any]:
    """The models of the latest county run whose models have this digest ({} when none has)."""
    if county is None or digest is None:
        return {}
    for est in db.session.scalars(select(GradingRun.estimation).where(
            GradingRun.county_code == county, GradingRun.rule_pack == pack_code,
            GradingRun.estimation.is_not(None)).order_by(GradingRun.id.desc())):
        models = (est or {}).get("models") or {}
        if models and models_digest(models) == digest:
            return dict(models)
    return {}


def run_models(run: GradingRun | None) -> dict[str, es.Model] | None:
    if run is None or not run.estimation:
        return None
    models = {k: es.Model.from_dict(v) for k, v in (run.estimation.get("models") or {}).items()}
    return models or None  # a run that had nothing to estimate fitted nothing


def latest_run(county: str, pack: RulePack) -> GradingRun | None:
    """The county's latest run that recorded estimation models under this pack."""
    return db.session.scalar(select(GradingRun).where(
        GradingRun.county_code == county, GradingRun.rule_pack == pack.code, GradingRun.estimation.is_not(None))
        .order_by(GradingRun.id.desc()).limit(1))


def latest_models(county: str, pack: RulePack) -> dict[str, es.Model] | None:
    return run_models(latest_run(county, pack))


def nothing_to_estimate() -> dict[str, Any]:
    """A county run's estimation record when every parcel has a usable sample (nothing is fitted)."""
    return {"estimated": 0, "not_assessed": 0, "models": {}, "skipped": "every parcel has a usable sample"}


def for_county(county: str, pack: RulePack) -> tuple[dict[str, Evaluated], dict[str, Any]]:
    """A whole-county run: fit, estimate every unsampled parcel; (estimated grades, the record).

    The run calls it when its pass meets the first parcel without a usable sample: a county whose
    parcels all have one neither fits nor scans its parcels to learn that (the scan, an EXISTS per
    parcel over samples, conflicts and results, took 0.9 s of a 200,000-parcel county's run, under load)."""
    data, res, models = spatial.assess_county(county, pack)
    if data is None:
        return {}, {}
    land_use = {p.code: p.land_use for p in data.parcels}
    dicts = {k: m.to_dict() for k, m in sorted(models.items())}
    digest = models_digest(dicts)
    out: dict[str, Evaluated] = {}
    not_assessed = 0
    for code in list(res):  # each assessment is let go once its grade is made: at 1,000,000 parcels
        a = res.pop(code)  # the two together were most of the run's 13 GB, and the collector scans them
        if a.basis == es.ESTIMATED:
            out[code] = to_evaluated(a, pack, land_use[code], digest)
        elif a.basis == es.NOT_ASSESSED:
            not_assessed += 1
    record = {"epsg": data.projection.epsg, "samples": len(data.samples),
              "estimated": len(out), "not_assessed": not_assessed, "models": dicts}
    return out, record


def around(parcel_codes: Iterable[str], pack: RulePack) -> tuple[set[str], dict[str, Evaluated]]:
    """The unsampled parcels whose estimate a change on these parcels can move, and their new
    estimates (with the latest county run's models; nothing before a county run has fitted them).

    With the run's variograms fixed, an estimate depends only on its neighbour set (decision B of
    issue 14). For the samples S on these parcels (new, changed, moved or removed) that is: the
    parcels whose stored neighbour sets name S, the unsampled parcels within ``search_radius_m``
    of S that now take S into a set (the same nearest-first search a county run makes), and the
    unsampled parcels among these parcels themselves. Assumes a sample's point lies in its
    parcel's box (its fix, else the box's centre): parcels naming it are within the radius of it.
    """
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
        run = latest_run(county, pack)
        models = run_models(run)
        if models is None:
            continue
        targets_box = _grown(boxes, radius)  # parcels that can name (or take) a sample of these parcels
        if not spatial.has_unsampled(county, targets_box):
            continue  # every parcel around has its own sample: nothing to re-estimate
        data = spatial.load_county(county, pack, _grown(boxes, 2 * radius), targets_box, run.estimation.get("epsg"))
        if data is None:
            continue
        asked = set(codes)
        changed = set(db.session.scalars(select(Sample.code).where(Sample.parcel_code.in_(codes))))
        sampled = {s.parcel for s in data.samples}
        unsampled = [t for t in data.targets if t.code not in sampled]
        names = _naming(pack, [t.code for t in unsampled], changed)
        takes = _taking(data.samples, unsampled, changed, pack.estimation, list(pack.data["analytes"]))
        targets = [t for t in unsampled if t.code in asked or t.code in names or t.code in takes]
        if not targets:
            continue
        res, _ = es.assess(data.samples, targets, list(pack.data["analytes"]), spatial.limit_fn(pack),
                           pack.estimation, models)
        digest = models_digest(run.estimation["models"])
        land_use = {p.code: p.land_use for p in data.parcels}
        for code, a in res.items():
            if a.basis == es.MEASURED:
                continue
            found.add(code)
            if a.basis == es.ESTIMATED:
                estimates[code] = to_evaluated(a, pack, land_use[code], digest)
    return found, estimates


def _grown(boxes: Sequence[tuple], metres: float) -> tuple[float, float, float, float]:
    """The lon/lat box around these boxes grown by ``metres`` on every side (generously)."""
    lat = (min(b[1] for b in boxes) + max(b[3] for b in boxes)) / 2
    dlat = metres / _DEG_M
    dlon = metres / (_DEG_M * max(0.1, math.cos(math.radians(lat))))
    return (min(b[0] for b in boxes) - dlon, min(b[1] for b in boxes) - dlat,
            max(b[2] for b in boxes) + dlon, max(b[3] for b in boxes) + dlat)


def _naming(pack: RulePack, parcel_codes: Sequence[str], samples: set[str]) -> set[str]:
    """Those of these parcels whose current grade under the pack names one of these samples as a
    neighbour (read as text, parsed only where a code appears in it)."""
    from .inputs import CHUNK

    if not samples or not parcel_codes:
        return set()
    needles = [orjson.dumps(c).decode() for c in samples]
    out: set[str] = set()
    for start in range(0, len(parcel_codes), CHUNK):
        chunk = parcel_codes[start:start + CHUNK]
        for code, text in db.session.execute(
                select(Grade.subject_code, cast(Grade.explanation, Text))
                .where(Grade.subject_type == "parcel", Grade.rule_pack == pack.code, Grade.superseded_by.is_(None),
                       Grade.subject_code.in_(chunk))):
            if text and any(n in text for n in needles) and set(neighbour_codes(orjson.loads(text))) & samples:
                out.add(code)
    return out


def _taking(samples: Sequence[es.Sample], targets: Sequence[es.Target], changed: set[str],
            params: es.EstimationParams, analytes: Sequence[str]) -> set[str]:
    """The targets that take one of the ``changed`` samples into a neighbour set (of any analyte or
    pH): the county run's own search (``estimation._neighbours``) over the samples of each land-use
    group that hold the analyte, in code order, asked only for targets within the radius of one."""
    hits = [s for s in samples if s.code in changed]
    if not hits or not targets:
        return set()
    out: set[str] = set()
    ordered = sorted(samples, key=lambda s: s.code)
    txy = np.array([[t.x, t.y] for t in targets], dtype=float)
    groups = np.array([params.group(t.land_use) for t in targets])
    for analyte in ("pH", *[a for a in analytes if a != "pH"]):
        for group in {params.group(s.land_use) for s in hits if analyte in s.values}:
            gs = [s for s in ordered if analyte in s.values and params.group(s.land_use) == group]
            mine = [k for k, s in enumerate(gs) if s.code in changed]
            close = np.zeros(len(targets), bool)
            for k in mine:
                close |= np.hypot(txy[:, 0] - gs[k].x, txy[:, 1] - gs[k].y) <= params.search_radius_m
            near = np.nonzero(close & (groups == group))[0]
            if not len(near):
                continue
            idx, _ = es._neighbours(np.array([[s.x, s.y] for s in gs], dtype=float), txy[near], params)
            took = np.isin(idx, mine).any(axis=1)
            out.update(targets[j].code for j in near[took].tolist())
    return out
