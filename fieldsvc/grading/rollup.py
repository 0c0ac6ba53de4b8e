"""Area roll-up: a village, farm park or county graded on its assessed area (DESIGN §5 revised).

A parcel is assessed when it has a verdict from values, measured or estimated (qualified, not
qualified, indeterminate); the grade is the qualified share of the assessed area against the
pack's A/B thresholds, and any strict-control parcel caps it at C. Coverage = assessed area ÷
total area; below the pack's ``min_coverage`` the grade is ``not_assessed``, never C.
Not-assessed and needs-sampling parcels never count as failing. The three-level rule is this
design's (STANDARDS.md §8.6), and the explanation says so (``rule``). The same arithmetic runs on maintained
sums (``RollupSums.apply``), so a re-grade updates an area in O(1) and gives exactly what a
full roll-up would: areas are Decimals added and subtracted without rounding.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Context, Decimal
from typing import Any

from fieldsvc.errors import validation_failed
from fieldsvc.grading.rules import DEFAULT_ROLLUP, RulePack, to_decimal

HOLDING_BACK_CAP = 50
ASSESSED = ("qualified", "not_qualified", "indeterminate")
NOT_ASSESSED = "not_assessed"
RULE = "area share, fieldsvc design"
DEFAULT_MIN_COVERAGE = Decimal("0.6")
_EXACT = Context(prec=80)
_SHOW = Context(prec=12)
_ZERO = Decimal(0)


@dataclass(frozen=True)
class ParcelOutcome:
    """One parcel's latest result as a roll-up sees it; ``verdict`` None means not graded yet."""

    code: str
    area_m2: Decimal | float
    verdict: str | None
    strict_control: bool = False


def _area(o: ParcelOutcome) -> Decimal:
    try:
        area = to_decimal(o.area_m2)
    except ValueError:
        area = Decimal(-1)
    if area < 0:
        raise validation_failed({"area_m2": f"Parcel {o.code}: area must be a number >= 0."})
    return area


@dataclass(frozen=True)
class RollupSums:
    """The maintained sums of one area (store one row per area and rule pack)."""

    total_area: Decimal = _ZERO
    graded_area: Decimal = _ZERO
    qualified_area: Decimal = _ZERO
    parcel_count: int = 0
    graded_count: int = 0
    qualified_count: int = 0
    strict_count: int = 0

    def _shift(self, o: ParcelOutcome, sign: int) -> RollupSums:
        area = _area(o)
        graded = o.verdict in ASSESSED
        qualified = o.verdict == "qualified"
        signed = area if sign > 0 else -area
        return replace(
            self,
            total_area=_EXACT.add(self.total_area, signed),
            graded_area=_EXACT.add(self.graded_area, signed) if graded else self.graded_area,
            qualified_area=_EXACT.add(self.qualified_area, signed) if qualified else self.qualified_area,
            parcel_count=self.parcel_count + sign,
            graded_count=self.graded_count + (sign if graded else 0),
            qualified_count=self.qualified_count + (sign if qualified else 0),
            strict_count=self.strict_count + (sign if o.strict_control else 0),
        )

    def apply(self, old: ParcelOutcome | None, new: ParcelOutcome | None) -> RollupSums:
        """New sums after one parcel changed: ``old`` None = added, ``new`` None = removed."""
        sums = self if old is None else self._shift(old, -1)
        return sums if new is None else sums._shift(new, +1)


def _thresholds(thresholds: Mapping[str, Any] | RulePack | None) -> dict[str, Decimal]:
    if thresholds is None:
        return dict(DEFAULT_ROLLUP)
    if isinstance(thresholds, RulePack):
        return thresholds.rollup_thresholds
    return {k: to_decimal(thresholds[k]) for k in ("A", "B")}


def _min_coverage(thresholds: Mapping[str, Any] | RulePack | None) -> Decimal:
    if isinstance(thresholds, RulePack):
        return to_decimal(thresholds.estimation.min_coverage)
    if thresholds is not None and "min_coverage" in thresholds:
        return to_decimal(thresholds["min_coverage"])
    return DEFAULT_MIN_COVERAGE


def grade_from_sums(sums: RollupSums, thresholds: Mapping[str, Any] | RulePack | None = None) -> str:
    """A/B/C by qualified share of the assessed area, compared exactly (share ≥ t ⇔ qualified ≥
    t·assessed); ``not_assessed`` when assessed < min_coverage·total (or nothing is assessed)."""
    t = _thresholds(thresholds)
    cov = _min_coverage(thresholds)
    if sums.total_area <= 0 or sums.graded_area <= 0 or sums.graded_area < _EXACT.multiply(cov, sums.total_area):
        return NOT_ASSESSED
    if sums.strict_count > 0:
        return "C"
    for grade in ("A", "B"):
        if sums.qualified_area >= _EXACT.multiply(t[grade], sums.graded_area):
            return grade
    return "C"


def clear_of_thresholds(sums: RollupSums, thresholds: Mapping[str, Any] | RulePack | None,
                        tolerance: float) -> bool:
    """Whether every comparison ``grade_from_sums`` makes clears its threshold by more than
    ``tolerance`` × the total area, so that sums carrying a small error still give the exact grade."""
    if sums.graded_count == 0 or sums.graded_area <= 0:
        return True  # nothing assessed, or only parcels of no area: not assessed whatever the digits
    tol = _EXACT.multiply(Decimal(tolerance), max(sums.total_area, Decimal(1)))
    edges = [(sums.graded_area, _min_coverage(thresholds), sums.total_area)]
    edges += [(sums.qualified_area, t, sums.graded_area) for t in _thresholds(thresholds).values()]
    return all(abs(_EXACT.subtract(part, _EXACT.multiply(share, whole))) > tol for part, share, whole in edges)


def _share(part: Decimal, whole: Decimal) -> Decimal:
    return _SHOW.divide(part, whole) if whole > 0 else _ZERO


@dataclass(frozen=True)
class AreaGrade:
    grade: str
    qualified_share: Decimal
    coverage: Decimal
    total_area_m2: Decimal
    graded_area_m2: Decimal
    qualified_area_m2: Decimal
    parcel_count: int
    graded_count: int
    qualified_count: int
    strict_control_count: int
    holding_back: tuple[str, ...] = ()
    holding_back_count: int = 0
    thresholds: dict[str, Decimal] = field(default_factory=lambda: dict(DEFAULT_ROLLUP))
    min_coverage: Decimal = DEFAULT_MIN_COVERAGE

    @classmethod
    def from_sums(cls, sums: RollupSums, thresholds: Mapping[str, Any] | RulePack | None = None,
                  holding_back: tuple[str, ...] = (), holding_back_count: int | None = None) -> AreaGrade:
        """From maintained sums; the holding-back list comes from whoever can query the parcels."""
        return cls(
            grade=grade_from_sums(sums, thresholds),
            qualified_share=_share(sums.qualified_area, sums.graded_area),
            coverage=_share(sums.graded_area, sums.total_area),
            total_area_m2=sums.total_area,
            graded_area_m2=sums.graded_area,
            qualified_area_m2=sums.qualified_area,
            parcel_count=sums.parcel_count,
            graded_count=sums.graded_count,
            qualified_count=sums.qualified_count,
            strict_control_count=sums.strict_count, holding_back=holding_back,
            holding_back_count=(sums.graded_count - sums.qualified_count if holding_back_count is None
                                else holding_back_count),
            thresholds=_thresholds(thresholds), min_coverage=_min_coverage(thresholds),
        )

    @property
    def qualified(self) -> bool:
        """Villages and farm parks may be certified at grade A only."""
        return self.grade == "A"

    @property
    def verdict(self) -> str:
        """qualified (grade A), not_qualified (B or C) or not_assessed (below the coverage needed)."""
        return "qualified" if self.qualified else (NOT_ASSESSED if self.grade == NOT_ASSESSED else "not_qualified")

    def to_dict(self) -> dict[str, Any]:
        body = self._body()
        if self.grade == NOT_ASSESSED:
            need = max(_ZERO, _EXACT.subtract(_EXACT.multiply(self.min_coverage, self.total_area_m2),
                                              self.graded_area_m2))
            body["message"] = (f"Not assessed: {float(self.coverage):.1%} of the area has a verdict from samples "
                               f"(measured or estimated), {float(self.min_coverage):.0%} is needed; samples on "
                               f"unassessed parcels totalling {float(need) / 10_000:.1f} ha more would lift it "
                               "(sampling/next ranks where).")
            body["assessed_area_needed_m2"] = str(_SHOW.plus(need).normalize())
        return body

    def _body(self) -> dict[str, Any]:
        return {
            "grade": self.grade,
            "rule": RULE,
            "min_coverage": str(self.min_coverage),
            "qualified": self.qualified,
            "qualified_share": str(self.qualified_share),
            "coverage": str(self.coverage),
            "total_area_m2": str(self.total_area_m2),
            "graded_area_m2": str(self.graded_area_m2),
            "qualified_area_m2": str(self.qualified_area_m2),
            "parcel_count": self.parcel_count,
            "graded_count": self.graded_count,
            "qualified_count": self.qualified_count,
            "strict_control_count": self.strict_control_count,
            "holding_back": list(self.holding_back),
            "holding_back_count": self.holding_back_count,
            "thresholds": {k: str(v) for k, v in self.thresholds.items()},
        }


def rollup(outcomes: Iterable[ParcelOutcome],
           thresholds: Mapping[str, Any] | RulePack | None = None) -> AreaGrade:
    """Grade an area from its parcels; ``holding_back`` lists the largest non-qualifying parcels first."""
    sums = RollupSums()
    behind: list[ParcelOutcome] = []
    for o in outcomes:
        sums = sums.apply(None, o)
        if o.verdict in ASSESSED and o.verdict != "qualified":
            behind.append(o)
    top = heapq.nsmallest(HOLDING_BACK_CAP, behind, key=lambda o: (-_area(o), o.code))
    return AreaGrade.from_sums(sums, thresholds, tuple(o.code for o in top), len(behind))
