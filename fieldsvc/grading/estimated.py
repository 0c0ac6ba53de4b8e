"""Estimated parcel grades inside the grading pass (DESIGN §4.6, §5 revised).

A whole-county run fits the variograms at its first parcel without a usable sample
(``county_basis``), records them with the run, and every such parcel that has enough neighbours
gets an ``estimated`` grade (its own grade row, like a measured one), valued chunk by chunk where
the chunk is read (``ChunkEstimator``) and stored compactly: estimates, σ, bounds and verdicts per
analyte and the parcel's neighbour sets (codes and distances) once (``stored``); one parcel
read is expanded with its neighbours' values and the run's models (``expand``). An incremental
re-grade (a new approved result, a sample edit) re-estimates, with the latest county run's
models, only the parcels whose neighbour sets name a changed sample or would now take it in
(``around``). Parcels with too few neighbours stay without a grade row; the API shows them with
``basis: not_assessed``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
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
from .basis import stored_rows
from .evaluation import Evaluated, StoredExplanation
from .models import Grade, GradingRun
from .rules import RulePack

_DEG_M = 111_320.0  # metres per degree of latitude (a generous bbox; distances are then exact)


def applies(pack: RulePack) -> bool:
    return pack.kind == "green_food_soil"


_NO_INPUTS: dict[str, Any] = {"samples": [], "results": [], "excluded": []}  # shared by every estimated parcel


def models_digest(model_dicts: Mapping[str, Mapping[str, Any]]) -> str:
    """A short digest of a run's models (``{analyte: Model.to_dict()}``): what an estimated grade
    names instead of copying them, so a re-run that fits the same models keeps its grades."""
    return hashlib.sha256(canonical_json(dict(model_dicts)).encode()).hexdigest()[:16]


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
    for r in stored_rows(explanation):
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
           if k not in ("neighbour_sets", "ph_neighbour_set", "models_digest", "ph")}
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


def stored(county: es.CountyAssessment, pack: RulePack, digest: str) -> tuple[dict[str, Evaluated], list[str]]:
    """The estimated grades of a county's unsampled parcels, by code, and the codes of those not
    assessed, stored compactly (decision A of issue 14), straight from the arrays
    (``estimation.assess_arrays``).

    The explanation: per analyte its estimate, σ, bounds, limit, method, verdict and reason, and
    the index of its neighbour set in ``neighbour_sets`` (the rows and sets as
    ``CountyAssessment.texts`` writes them, the one writer: ``assess`` parses the same text);
    ``exceeding`` names the neighbours over their own limit (precaution). The neighbours' values
    and the models (``models_digest`` names the run's) are resolved when one parcel is read
    (``expand``). The JSON text is orjson's compact form of that object, made once: the
    fingerprint hashes it and the column stores it (``tests/unit/grading/test_estimated_text.py``
    checks it against the geometry, the limits and the per-target estimate).

    Why from the arrays: at 1,000,000 parcels making each parcel's rows, neighbour sets and
    assessment as dicts, then encoding them, cost most of the estimation half, and the cyclic
    collector walked those millions of objects again at every full collection. Here numbers are
    encoded per analyte in one ``orjson`` call (the same text orjson gives each of them), a
    neighbour set's text once per search, and a parcel's explanation is one string; what the
    grading pass keeps per parcel is an ``Evaluated`` and a ``StoredExplanation`` holding it."""
    targets = county.unsampled
    n = len(targets)
    if not n:
        return {}, []
    estimated_mask, verdict_idx = county.verdicts()
    analytes = list(county.rows)
    texts = county.texts()
    analytes_text, ph_text, sets_text, ph_refs = texts.analytes, texts.ph, texts.sets, texts.ph_set
    del texts
    # limiting lists and methods by which analytes are not qualified / carry a method (shared)
    flags_lim = np.zeros(n, np.int64)
    flags_meth = np.zeros(n, np.int64)
    for bit, a in enumerate(analytes):
        r = county.rows[a]
        flags_lim |= np.where(r.verdict != 0, 1 << bit, 0)
        flags_meth |= np.where(r.kind != es.ROW_TOO_FEW, 1 << bit, 0)
    limiting_of: dict[int, list[str]] = {}
    method_of: dict[int, str] = {}
    land_use_of: dict[str, str] = {}
    tail = orjson.dumps({"parameters": {"search_radius_m": pack.estimation.search_radius_m,
                                        "min_neighbours": pack.estimation.min_neighbours, "z": pack.estimation.z},
                         "models_digest": digest, "strict_control": False}).decode()[1:]
    prefix = f"{pack.code}\n{pack.version}\n"
    verdicts = [es.ROW_VERDICTS[v] for v in range(len(es.ROW_VERDICTS))]
    out: dict[str, Evaluated] = {}
    not_assessed: list[str] = []
    for i, t, est, lim_flags, meth_flags, v in zip(range(n), targets, estimated_mask.tolist(), flags_lim.tolist(),
                                                   flags_meth.tolist(), verdict_idx.tolist(), strict=True):
        if not est:
            not_assessed.append(t.code)
            continue
        method = method_of.get(meth_flags)
        if method is None:
            ms = sorted({county.rows[a].method for bit, a in enumerate(analytes) if meth_flags >> bit & 1})
            method = method_of[meth_flags] = orjson.dumps(ms[0] if len(ms) == 1 else ms).decode()
        limiting = limiting_of.get(lim_flags)
        if limiting is None:
            limiting = limiting_of[lim_flags] = sorted(a for bit, a in enumerate(analytes) if lim_flags >> bit & 1)
        lu = land_use_of.get(t.land_use)
        if lu is None:
            lu = land_use_of[t.land_use] = orjson.dumps(t.land_use).decode()
        text = (f'{{"basis":"estimated","land_use":{lu},"method":{method},"analytes":[{analytes_text[i]}],'
                f'"ph":{ph_text[i]},"ph_neighbour_set":{ph_refs[i]},"neighbour_sets":[{sets_text[i]}],{tail}')
        explanation = StoredExplanation(basis=es.ESTIMATED)
        explanation.text = text
        fp = hashlib.sha256((prefix + text).encode()).hexdigest()
        verdict = verdicts[v]
        out[t.code] = Evaluated(verdict, None, verdict == "qualified", False, limiting, explanation, fp,
                                _NO_INPUTS, None)
    return out, not_assessed


def nothing_to_estimate() -> dict[str, Any]:
    """A county run's estimation record when every parcel has a usable sample (nothing is fitted)."""
    return {"estimated": 0, "not_assessed": 0, "models": {}, "skipped": "every parcel has a usable sample"}


def unsampled(parcel: Sequence[Any], ev: Evaluated) -> bool:
    """A live parcel without a usable sample (what the estimation values): no approved results
    (``parcel``: a run's parcel row, ``deleted_at`` at 6)."""
    return not ev.graded and parcel[6] is None and ev.explanation.get("reason") == "no_approved_results"


@dataclass(frozen=True)
class CountyBasis:
    """What a county run values its unsampled parcels from, made once per run when its first
    such parcel turns up (``county_basis``) and handed as it is to the read-ahead workers: the
    projection the county's parcels chose (its EPSG code), the usable samples, and the models
    fitted to them."""

    epsg: int
    samples: list[es.Sample]
    models: dict[str, es.Model]
    # the fitted ``Survey`` itself, for the process that fitted it (a serial run values its chunks
    # from it instead of building it again); not sent to workers (its limit function is a closure)
    survey: es.Survey | None = field(default=None, compare=False, repr=False)

    def __reduce__(self) -> tuple[Any, ...]:
        return CountyBasis, (self.epsg, self.samples, self.models)

    def record(self) -> dict[str, Any]:
        """The run's estimation record (``GradingRun.estimation``), counts still zero."""
        return {"epsg": self.epsg, "samples": len(self.samples), "estimated": 0, "not_assessed": 0,
                "models": {k: m.to_dict() for k, m in sorted(self.models.items())}}


def county_basis(county: str, pack: RulePack) -> CountyBasis | None:
    """Fit the county's variograms to its usable samples (None: the county has no live parcel)."""
    survey = spatial.load_survey(county)
    if survey is None:
        return None
    fitted = es.Survey(survey.samples, list(pack.data["analytes"]), spatial.limit_fn(pack), pack.estimation)
    return CountyBasis(survey.projection.epsg, survey.samples, fitted.models, fitted)


class ChunkEstimator:
    """Values the unsampled parcels of each chunk of a county run, in whichever process reads the
    chunk (the run's own, or a read-ahead worker: ``parallel``), from one ``CountyBasis``.

    Why per chunk: an estimate depends only on the samples and the models, so valuing the
    county chunk by chunk stores the text, fingerprint and verdict a single pass over the county
    gives (``tests/api/test_spatial_county.py`` holds a run with workers to a serial one), while
    the workers do it on the machine's other cores as the run writes, and no process holds a
    million estimates at once. ``basis`` is asked for once, at the first unsampled parcel: a
    county whose parcels all have a usable sample neither fits nor reads its samples twice."""

    def __init__(self, pack: RulePack, basis: Callable[[], CountyBasis | None]) -> None:
        self.pack, self._basis = pack, basis
        self._ready: tuple[es.Survey, es.Projection, str] | None = None
        self._asked = False

    def _state(self) -> tuple[es.Survey, es.Projection, str] | None:
        if not self._asked:
            self._asked = True
            basis = self._basis()
            if basis is not None:
                survey = basis.survey or es.Survey(basis.samples, list(self.pack.data["analytes"]),
                                                   spatial.limit_fn(self.pack), self.pack.estimation, basis.models)
                self._ready = survey, es.projection_of(basis.epsg), models_digest(basis.record()["models"])
        return self._ready

    def apply(self, parcels: Sequence[Sequence[Any]], evaluated: list[Evaluated]) -> tuple[list[Evaluated], int, int]:
        """The chunk's evaluations with each unsampled parcel's estimate in place of its own
        (``parcels``: the run's rows, bounding box at 7–10); how many were estimated, and how
        many had too few neighbours for any analyte (not assessed)."""
        picks = [k for k, (r, ev) in enumerate(zip(parcels, evaluated, strict=True)) if unsampled(r, ev)]
        if not picks or (state := self._state()) is None:
            return evaluated, 0, 0
        survey, projection, digest = state
        picks = [k for k in picks if parcels[k][0] not in survey.on_parcel]
        x, y = projection.to_xy([(parcels[k][7] + parcels[k][9]) / 2 for k in picks],
                                [(parcels[k][8] + parcels[k][10]) / 2 for k in picks])
        targets = [es.Target(parcels[k][0], float(a), float(b), parcels[k][4])
                   for k, a, b in zip(picks, x.tolist(), y.tolist(), strict=True)]
        made, not_assessed = stored(survey.assess(targets), self.pack, digest)
        out = list(evaluated)
        for k in picks:
            estimate = made.get(parcels[k][0])
            if estimate is not None:
                out[k] = estimate
        return out, len(made), len(not_assessed)


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
        assessed = es.assess_arrays(data.samples, targets, list(pack.data["analytes"]), spatial.limit_fn(pack),
                                    pack.estimation, models)
        made, not_assessed = stored(assessed, pack, models_digest(run.estimation["models"]))
        found.update(made)
        found.update(not_assessed)
        estimates.update(made)
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
