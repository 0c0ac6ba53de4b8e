"""Roll-up state: members (how a parcel is counted) and exact area sums, their canonical text,
and the row locks that keep concurrent re-grades from losing an update.

State per county and rule pack (created by a county run, ``runs.run_grading`` or
``runs.grade_demo_county``): every parcel of the county has a ``RollupMember`` row (how it is
counted: area, village, park, verdict), and every village, farm park and the county itself has a
``RollupSum`` row equal to the sum of its members. ``regrade.regrade_parcels`` keeps both exact:
old outcome out, new outcome in, under a row lock on the county's sums so concurrent requests
cannot lose an update. Without that state (no county run yet) parcels are still graded, and area
grades are computed live on read (``queries``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from decimal import Context, Decimal
from typing import Any

from sqlalchemy import select

from ..audit.services import canonical_json
from ..extensions import db
from .inputs import CHUNK
from .models import RollupSum
from .rollup import ASSESSED, AreaGrade, ParcelOutcome, RollupSums
from .rules import RulePack, to_decimal

_EXACT = Context(prec=80)
_ZERO = Decimal(0)


Member = tuple  # (village, park, county, area float, verdict|None, qualified, strict)


def _outcome(code: str, m: Member) -> ParcelOutcome:
    return ParcelOutcome(code, m[3], m[4], m[6])


def _areas_of(m: Member) -> list[tuple[str, str]]:
    areas = [("village", m[0]), ("county", m[2])]
    if m[1]:
        areas.append(("farm_park", m[1]))
    return areas


def _sums_from_row(row: RollupSum) -> RollupSums:
    return RollupSums(Decimal(row.total_area), Decimal(row.graded_area), Decimal(row.qualified_area),
                      row.parcel_count, row.graded_count, row.qualified_count, row.strict_count)


def canonical_decimal(d: Decimal) -> str:
    """One text per value ("6927.7", never "6927.70"): sums reached by different paths print alike."""
    if d == d.to_integral_value():
        return str(d.quantize(Decimal(1)))
    return str(d.normalize())


AREA_KEYS = ("total_area_m2", "graded_area_m2", "qualified_area_m2", "coverage", "qualified_share")


def area_dict(ag: AreaGrade) -> dict[str, Any]:
    """``AreaGrade.to_dict`` with areas in canonical decimal text."""
    body = ag.to_dict()
    for key in AREA_KEYS:
        body[key] = canonical_decimal(Decimal(body[key]))
    return body


def _sums_values(s: RollupSums) -> dict[str, Any]:
    return {"total_area": canonical_decimal(s.total_area), "graded_area": canonical_decimal(s.graded_area),
            "qualified_area": canonical_decimal(s.qualified_area), "parcel_count": s.parcel_count,
            "graded_count": s.graded_count, "qualified_count": s.qualified_count, "strict_count": s.strict_count}


class _Acc:
    """A mutable RollupSums for full rebuilds (same exact arithmetic, without a copy per parcel)."""

    __slots__ = ("total", "graded", "qualified", "n", "ng", "nq", "ns")

    def __init__(self) -> None:
        self.total = self.graded = self.qualified = _ZERO
        self.n = self.ng = self.nq = self.ns = 0

    def add(self, m: Member, area: Decimal | None = None) -> None:
        area = to_decimal(m[3]) if area is None else area
        self.total = _EXACT.add(self.total, area)
        self.n += 1
        if m[4] in ASSESSED:  # a verdict from values; needs-sampling and not-assessed are not assessed
            self.graded = _EXACT.add(self.graded, area)
            self.ng += 1
        if m[5]:
            self.qualified = _EXACT.add(self.qualified, area)
            self.nq += 1
        if m[6]:
            self.ns += 1

    def merge(self, other: _Acc) -> None:
        self.total = _EXACT.add(self.total, other.total)
        self.graded = _EXACT.add(self.graded, other.graded)
        self.qualified = _EXACT.add(self.qualified, other.qualified)
        self.n += other.n
        self.ng += other.ng
        self.nq += other.nq
        self.ns += other.ns

    def sums(self) -> RollupSums:
        return RollupSums(self.total, self.graded, self.qualified, self.n, self.ng, self.nq, self.ns)


def county_has_state(county: str, pack_code: str) -> bool:
    return db.session.scalar(select(RollupSum.id).where(
        RollupSum.subject_type == "county", RollupSum.subject_code == county, RollupSum.rule_pack == pack_code)) \
        is not None


def _lock_sums(pack_code: str, areas: Iterable[tuple[str, str]]) -> dict[tuple[str, str], RollupSum]:
    """Sums rows for these areas, locked (PostgreSQL) county first, then parks, then villages."""
    order = {"county": 0, "farm_park": 1, "village": 2}
    wanted = sorted(set(areas), key=lambda a: (order[a[0]], a[1]))
    found: dict[tuple[str, str], RollupSum] = {}
    for kind in ("county", "farm_park", "village"):
        codes = [c for t, c in wanted if t == kind]
        for start in range(0, len(codes), CHUNK):
            stmt = (select(RollupSum).where(RollupSum.subject_type == kind, RollupSum.rule_pack == pack_code,
                                            RollupSum.subject_code.in_(codes[start:start + CHUNK]))
                    .order_by(RollupSum.subject_code).with_for_update())
            found.update({(r.subject_type, r.subject_code): r for r in db.session.scalars(stmt)})
    return found


def _area_fingerprint(pack: RulePack, sums: RollupSums) -> str:
    body = {"pack": [pack.code, pack.version], "thresholds": {k: str(v) for k, v in pack.rollup_thresholds.items()},
            "sums": _sums_values(sums)}
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()
