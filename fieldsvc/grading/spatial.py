"""A county's inputs for spatial estimation, read from the database, and the pack's limits as a
function of land use and a pH interval. The estimation itself is ``estimation.py`` (pure).

Inputs follow the grading rules: a parcel's samples are the complete, live, conflict-free
samples whose approved results the parcel grade uses (``services.load_inputs``); a sample
needs a position (its GPS fix; else its parcel's centre) to be a neighbour. A censored value
(``<DL``) enters as half its detection limit, as in indices and means (DESIGN §5).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import chain
from typing import Any

import numpy as np
from sqlalchemy import Float, column, func, literal_column, select, table

from ..dbutil import dialect_name
from ..extensions import db
from ..lab.models import LabResult
from ..places.models import Parcel
from ..samples.models import Sample, SyncConflict
from . import estimation as es
from .grade import Measurement
from .inputs import BLOCKING_CONFLICTS, _fetch
from .rules import RulePack


@dataclass(frozen=True)
class CountyParcel:
    code: str
    village: str
    farm_park: str | None
    land_use: str
    area_m2: float
    lon: float
    lat: float


@dataclass(frozen=True)
class CountyInputs:
    county: str
    projection: es.Projection
    parcels: list[CountyParcel]
    targets: list[es.Target]
    samples: list[es.Sample]


def _value(m: Measurement) -> float | None:
    if m.qualifier == "=" and m.value is not None:
        return float(m.value)
    if m.qualifier == "<" and m.detection_limit is not None:
        return float(m.detection_limit * Decimal("0.5"))
    return None


# the parcels' spatial index (migration "map tiles", kept by triggers): SQLite's R*Tree of the
# bounding boxes, PostgreSQL's GiST on ``parcels.geom`` (EPSG:3857)
_RTREE = table("parcels_rtree", column("id"), column("min_lon", Float), column("max_lon", Float),
               column("min_lat", Float), column("max_lat", Float))


def _parcel_where(county: str, bbox: tuple[float, float, float, float] | None) -> list[Any]:
    """A county's live parcels, those whose box meets ``bbox`` (through the spatial index, so a
    re-grade reads the few thousand parcels around a sample, not the county's million)."""
    where = [Parcel.county_code == county, Parcel.deleted_at.is_(None)]
    if bbox is not None:
        where += [Parcel.max_lon >= bbox[0], Parcel.max_lat >= bbox[1], Parcel.min_lon <= bbox[2],
                  Parcel.min_lat <= bbox[3]]
        engine = db.session.get_bind().dialect.name
        if engine == "sqlite":
            # ``county_code || ''``: the same test, but one SQLite cannot answer from the county's
            # index, so it reads the R*Tree's ids first (with the index it walked all the county's
            # parcels and probed the id list for each: 0.2 s a query at 1,000,000 parcels, 0.03 s now)
            where[0] = Parcel.county_code.concat("") == county
            where.append(Parcel.id.in_(select(_RTREE.c.id).where(
                _RTREE.c.max_lon >= bbox[0], _RTREE.c.max_lat >= bbox[1], _RTREE.c.min_lon <= bbox[2],
                _RTREE.c.min_lat <= bbox[3])))
        elif engine == "postgresql":  # a lon/lat box is a box in Web Mercator too
            where.append(literal_column("parcels.geom").op("&&")(
                func.ST_Transform(func.ST_MakeEnvelope(*bbox, 4326), 3857)))
    return where


def has_unsampled(county: str, bbox: tuple[float, float, float, float] | None = None) -> bool:
    """Whether a live parcel of the county (inside ``bbox``) has no usable sample: a complete, live
    sample without an open blocking conflict and with an approved result (what ``load_inputs``
    hands the estimation). Only such parcels are estimated, so without one there is nothing to
    estimate and a run need not read the county's inputs a second time (``bench/grading.py``)."""
    blocked = select(SyncConflict.id).where(SyncConflict.record_id == Sample.id, SyncConflict.status == "open",
                                            SyncConflict.kind.in_(BLOCKING_CONFLICTS)).exists()
    approved = select(LabResult.id).where(LabResult.sample_id == Sample.id, LabResult.status == "approved",
                                          LabResult.qc_type.is_(None)).exists()
    usable = select(Sample.id).where(Sample.parcel_code == Parcel.code, Sample.deleted_at.is_(None),
                                     Sample.state == "complete", ~blocked, approved).exists()
    return db.session.execute(select(Parcel.code).where(*_parcel_where(county, bbox), ~usable).limit(1)).first() \
        is not None


def load_county(county: str, pack: RulePack, bbox: tuple[float, float, float, float] | None = None,
                targets_bbox: tuple[float, float, float, float] | None = None,
                epsg: int | None = None) -> CountyInputs | None:
    """Parcels (bounding-box centres) and usable samples of a county (or of its parcels inside
    ``bbox`` = lon/lat min, min, max, max), projected to its UTM zone; None when none.

    ``targets_bbox`` (inside ``bbox``): only the parcels inside it, and those of ``bbox`` that
    hold a sample, are read (an incremental re-grade values a few parcels from a wider ring of
    samples). ``epsg``: the projection a county run chose (else the UTM zone of these parcels)."""

    where = _parcel_where(county, bbox)
    columns = (Parcel.code, Parcel.village_code, Parcel.farm_park_code, Parcel.land_use, Parcel.area_m2,
               Parcel.min_lon, Parcel.min_lat, Parcel.max_lon, Parcel.max_lat)
    if targets_bbox is None:
        rows = db.session.execute(select(*columns).where(*where).order_by(Parcel.code)).all()
    else:
        with_sample = select(Sample.id).where(Sample.parcel_code == Parcel.code).exists()
        got = {r[0]: r for r in db.session.execute(select(*columns).where(*_parcel_where(county, targets_bbox)))}
        got.update((r[0], r) for r in db.session.execute(select(*columns).where(*where, with_sample)))
        rows = [got[c] for c in sorted(got)]
    if not rows:
        return None
    parcels = [CountyParcel(r[0], r[1], r[2], r[3], float(r[4] or 0), (r[5] + r[7]) / 2, (r[6] + r[8]) / 2)
               for r in rows]
    proj = es.projection_of(epsg) if epsg else es.metric_projection([p.lon for p in parcels], [p.lat for p in parcels])
    px, py = proj.to_xy([p.lon for p in parcels], [p.lat for p in parcels])
    by_code = {p.code: (p.land_use, float(x), float(y)) for p, x, y in zip(parcels, px, py, strict=True)}
    targets = [es.Target(code, x, y, land_use) for code, (land_use, x, y) in by_code.items()]
    samples = _samples(proj, by_code, _sample_rows(county, bbox))
    return CountyInputs(county, proj, parcels, targets, samples)


def _sample_rows(county: str, bbox: tuple[float, float, float, float] | None) -> list[Any]:
    """The county's samples (inside ``bbox``) with their parcel: (sample id, lon, lat, parcel code,
    land use, the parcel's box), read from the samples' side in one join (a county has far fewer
    samples than parcels; SQLite is kept off the parcels' county index, which would walk a county's
    million parcels and probe the samples of each)."""
    where = _parcel_where(county, bbox)
    if bbox is None and dialect_name() == "sqlite":
        where[0] = Parcel.county_code.concat("") == county
    return db.session.execute(select(Sample.id, Sample.lon, Sample.lat, Parcel.code, Parcel.land_use, Parcel.min_lon,
                                     Parcel.min_lat, Parcel.max_lon, Parcel.max_lat)
                              .join(Parcel, Parcel.code == Sample.parcel_code).where(*where)).all()


def _samples(proj: es.Projection, by_code: Mapping[str, tuple[str, float, float]], rows: Sequence[Any],
             ) -> list[es.Sample]:
    """The usable samples of ``rows`` (``_sample_rows``), each at its fix (else its parcel's centre,
    ``by_code``: land use and projected centre by parcel code, for at least the parcels holding a
    sample), with their values. Only parcels with a sample have inputs: the unsampled ones, most of
    a county, are not asked for."""
    from .inputs import load_inputs

    inputs = load_inputs(sorted({r[3] for r in rows}))
    fixes = {r[0]: (r[1], r[2]) for r in rows if r[2] is not None}
    pending = []
    for code, pi in inputs.items():
        land_use, cx, cy = by_code[code]
        for s in pi.samples:
            values = {a: v for a, m in s.measurements.items() if (v := _value(m)) is not None}
            lon, lat = fixes.get(s.sample_id, (None, None))
            pending.append((s.sample_code, code, land_use, lon, lat, cx, cy, values))
    with_fix = [p for p in pending if p[3] is not None and p[4] is not None]
    fx, fy = proj.to_xy([p[3] for p in with_fix], [p[4] for p in with_fix]) if with_fix else ([], [])
    fixed = {p[0]: (float(x), float(y)) for p, x, y in zip(with_fix, fx, fy, strict=True)}
    samples: list[es.Sample] = []
    for code, parcel_code, land_use, _lon, _lat, cx, cy, values in pending:
        x, y = fixed.get(code, (cx, cy))
        samples.append(es.Sample(code, parcel_code, land_use, x, y, values))
    return samples


@dataclass(frozen=True)
class CountySurvey:
    """What a county's surfaces need before any parcel is valued: the county's projection (the
    UTM zone of its parcels' median centre, as ``load_county`` picks it), its usable samples, and
    ``extent``, the projected bounds of its live parcels' centres (x min, x max, y min, y max;
    what an element map's grid covers), read without making an object per parcel."""

    projection: es.Projection
    samples: list[es.Sample]
    extent: tuple[float, float, float, float]


_CENTRES = ("SELECT (min_lon + max_lon) / 2, (min_lat + max_lat) / 2 FROM parcels "
            "WHERE county_code = ? AND deleted_at IS NULL")


def _centres(county: str) -> tuple[np.ndarray, np.ndarray]:
    """Every live parcel's bounding-box centre (lon, lat) as arrays: a driver-level read (no row
    objects), since a county has a million of them and a run waits for this. The centre is the
    same double ``load_county`` computes from the four columns (IEEE arithmetic on both sides)."""
    rows = _fetch(_CENTRES, [county])
    flat = np.fromiter(chain.from_iterable(rows), float, 2 * len(rows))
    return flat[0::2], flat[1::2]


def load_survey(county: str) -> CountySurvey | None:
    """The county's projection, extent and samples (``load_county``'s, for the whole county);
    None when it has no live parcel."""
    lon, lat = _centres(county)
    if not len(lon):
        return None
    proj = es.metric_projection(lon, lat)
    x, y = proj.to_xy(lon, lat)
    extent = (float(x.min()), float(x.max()), float(y.min()), float(y.max()))
    del lon, lat, x, y
    rows = _sample_rows(county, None)
    parcels = {r[3]: r for r in rows}
    x, y = proj.to_xy([(r[5] + r[7]) / 2 for r in parcels.values()], [(r[6] + r[8]) / 2 for r in parcels.values()])
    by_code = {r[3]: (r[4], float(a), float(b)) for r, a, b in zip(parcels.values(), x, y, strict=True)}
    return CountySurvey(proj, _samples(proj, by_code, rows), extent)


def limit_fn(pack: RulePack) -> Callable[[str, str, float, float], tuple[float, float]]:
    """(analyte, land use, pH low, pH high) → (strictest, loosest) limit over that pH interval,
    from the pack's precompiled pH segments (an edge counts for the segments on both sides).

    The function also offers ``bands(analyte, land_use)``: the segments as (pH low or None, pH
    high or None, limit), so a county's parcels are looked up as arrays (``estimation.assess``)."""
    cache: dict[tuple, tuple[float, float]] = {}
    band_cache: dict[tuple[str, str], list[tuple[float | None, float | None, float]]] = {}

    def bands(analyte: str, land_use: str) -> list[tuple[float | None, float | None, float]]:
        got = band_cache.get((analyte, land_use))
        if got is None:
            table = pack.ph_table(land_use)
            i = table.analytes.index(analyte)
            edges = [float(e) for e, _ in table.ends]
            got = band_cache[(analyte, land_use)] = [
                (edges[k - 1] if k > 0 else None, edges[k] if k < len(edges) else None, float(row[i][0]))
                for k, row in enumerate(table.rows)]
        return got

    def limit(analyte: str, land_use: str, lo: float, hi: float) -> tuple[float, float]:
        key = (analyte, land_use, lo, hi)
        got = cache.get(key)
        if got is None:
            lims = [lim for seg_lo, seg_hi, lim in bands(analyte, land_use)
                    if (seg_lo is None or hi >= seg_lo) and (seg_hi is None or lo <= seg_hi)]
            got = cache[key] = (min(lims), max(lims))
        return got

    limit.bands = bands  # type: ignore[attr-defined]
    return limit


def assess_county(county: str, pack: RulePack, models: dict[str, es.Model] | None = None,
                  bbox: tuple[float, float, float, float] | None = None,
                  ) -> tuple[CountyInputs | None, dict[str, es.Assessment], dict[str, es.Model]]:
    """Every parcel's basis and verdict in a county (or a bbox of it) under a green-food pack
    (variograms fitted here unless ``models`` gives the run's)."""
    data, county_assessment = assess_county_arrays(county, pack, models, bbox)
    if county_assessment is None:
        return None, {}, {}
    return data, county_assessment.assessments(), county_assessment.models


def assess_county_arrays(county: str, pack: RulePack, models: dict[str, es.Model] | None = None,
                         bbox: tuple[float, float, float, float] | None = None,
                         ) -> tuple[CountyInputs | None, es.CountyAssessment | None]:
    """``assess_county`` with the unsampled parcels' rows as arrays (``estimation.assess_arrays``)."""
    pack.check_kind("green_food_soil")
    data = load_county(county, pack, bbox)
    if data is None:
        return None, None
    analytes = list(pack.data["analytes"])
    return data, es.assess_arrays(data.samples, data.targets, analytes, limit_fn(pack), pack.estimation, models)
