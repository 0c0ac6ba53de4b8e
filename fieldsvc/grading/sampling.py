"""Where to sample next (``GET /api/v1/sampling/next``, DESIGN §4.6).

Candidates are the parcels of a county or village without a measured grade whose verdict a
sample would settle: ``needs_sampling`` (estimated, the interval spans a limit or a neighbour
exceeds) and ``not_assessed`` (too few samples around). The ranking score is the parcel's area
in hectares times a weight: ``1 + max σ/limit`` over its analytes for needs-sampling parcels,
``1 + min(nearest sample distance / search radius, 3)`` for not-assessed ones (a sample far from
any other values more unassessed land around it). Each item has a suggested point inside the
parcel (shapely's representative point).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from scipy.spatial import cKDTree
from shapely.geometry import shape
from sqlalchemy import select

from ..extensions import db
from ..places.models import Parcel
from . import spatial
from .basis import stored_rows
from .models import Grade
from .queries import LEGACY_NOT_ASSESSED
from .rules import RulePack


def suggested_point(geometry_json: str) -> dict[str, float]:
    """A point inside the parcel to sample at (shapely's representative point), to six decimals (~0.1 m):
    the one suggestion ``sampling/next`` ranks with and a device's plan carries."""
    pt = shape(json.loads(geometry_json)).representative_point()
    return {"lat": round(pt.y, 6), "lon": round(pt.x, 6)}


def worst_sigma(explanation: dict[str, Any] | None) -> tuple[float | None, dict[str, Any] | None]:
    """The analyte whose σ is largest against its limit: ``(σ/limit, {analyte, value})``, or Nones."""
    rows = [r for r in stored_rows(explanation) if r.get("sigma") is not None and r.get("limit")]
    if not rows:
        return None, None
    worst = max(rows, key=lambda r: r["sigma"] / r["limit"])
    return worst["sigma"] / worst["limit"], {"analyte": worst["analyte"], "value": worst["sigma"]}


def _weight(reason: str, sigma_rel: float | None, nearest_m: float | None, radius: float) -> float:
    if reason == "needs_sampling":
        return 1.0 + (sigma_rel or 0.0)
    return 1.0 + min((nearest_m if nearest_m is not None else 3 * radius) / radius, 3.0)


def next_samples(county: str, pack: RulePack, village: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    data = spatial.load_county(county, pack)
    if data is None:
        return []
    centre = {t.code: (t.x, t.y) for t in data.targets}
    parcels = {p.code: p for p in data.parcels if village is None or p.village == village}
    sampled = {s.parcel for s in data.samples}
    grades = dict(db.session.execute(
        select(Grade.subject_code, Grade).where(Grade.subject_type == "parcel", Grade.rule_pack == pack.code,
                                                Grade.superseded_by.is_(None),
                                                Grade.county_code == county)).all())
    tree = cKDTree(np.array([[s.x, s.y] for s in data.samples])) if data.samples else None
    radius = pack.estimation.search_radius_m
    scored = []
    for code, p in parcels.items():
        if code in sampled:
            continue
        g = grades.get(code)
        if g is not None and g.verdict not in ("needs_sampling", *LEGACY_NOT_ASSESSED):
            continue
        reason = "needs_sampling" if g is not None and g.verdict == "needs_sampling" else "not_assessed"
        sigma_rel, sigma = None, None
        if reason == "needs_sampling":
            sigma_rel, sigma = worst_sigma(g.explanation)
        nearest = float(tree.query(centre[code])[0]) if tree is not None else None
        score = p.area_m2 / 10_000 * _weight(reason, sigma_rel, nearest, radius)
        scored.append((-score, code, reason, sigma, nearest))
    scored.sort()
    top = scored[:limit]
    geoms = dict(db.session.execute(select(Parcel.code, Parcel.geometry_json)
                                    .where(Parcel.code.in_([c for _, c, *_ in top]))).all()) if top else {}
    items = []
    for neg, code, reason, sigma, nearest in top:
        item = {"parcel": code, "village": parcels[code].village, "reason": reason,
                "nearest_sample_m": None if nearest is None else round(nearest),
                "point": suggested_point(geoms[code]), "score": round(-neg, 3)}
        if sigma is not None:
            item["sigma"] = sigma
        items.append(item)
    return items
