"""Area grades on assessed area (DESIGN §5 revised): village, farm park, county.

Pure. An area is graded on the parcels that have a verdict from values (measured or
estimated: ``qualified``, ``not_qualified`` or ``indeterminate``): the share of that assessed
area which qualifies, against the pack's A/B thresholds (any strict-control parcel caps at C).
``coverage`` = assessed area ÷ total area; below the pack's ``min_coverage`` the grade is
``not_assessed``, never C, and the explanation says how many samples on which parcels would lift
it. Not-assessed and needs-sampling parcels never count as failing. The three-level rule is this
design's (STANDARDS.md §8.6): the explanation says ``rule: area share, fieldsvc design``.

Certificates: an area only at grade A with the pack's sample density met (a density the pack
marks unverified is said so); a parcel only on measured values.

The same arithmetic runs on maintained sums (``AreaSums.apply``) so a re-grade updates an area
in O(1); areas are Decimals added and subtracted exactly.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Context, Decimal
from typing import Any

from fieldsvc.grading.estimation import ESTIMATED, MEASURED, NOT_ASSESSED, EstimationParams
from fieldsvc.grading.rules import DEFAULT_ROLLUP, to_decimal

RULE = "area share, fieldsvc design"
ASSESSED_VERDICTS = ("qualified", "not_qualified", "indeterminate")
_EXACT = Context(prec=80)
_SHOW = Context(prec=6)
_ZERO = Decimal(0)
_HA = Decimal(10_000)
SUGGEST_CAP = 50


@dataclass(frozen=True)
class AreaParcel:
    """One parcel as an area sees it: its area, basis, verdict and how many samples it holds."""

    code: str
    area_m2: Decimal | float | int
    basis: str  # measured | estimated | not_assessed
    verdict: str | None  # None: not graded yet (counts as not assessed)
    samples: int = 0
    strict_control: bool = False

    @property
    def assessed(self) -> bool:
        return self.basis in (MEASURED, ESTIMATED) and self.verdict in ASSESSED_VERDICTS


def _area(p: AreaParcel) -> Decimal:
    area = to_decimal(p.area_m2)
    if area < 0:
        raise ValueError(f"parcel {p.code}: area must be >= 0")
    return area


@dataclass(frozen=True)
class AreaSums:
    """Maintained sums of one area and pack."""

    total_area: Decimal = _ZERO
    assessed_area: Decimal = _ZERO
    qualified_area: Decimal = _ZERO
    measured_area: Decimal = _ZERO
    estimated_area: Decimal = _ZERO
    needs_sampling_area: Decimal = _ZERO
    parcel_count: int = 0
    assessed_count: int = 0
    qualified_count: int = 0
    sample_count: int = 0
    strict_count: int = 0

    def _shift(self, p: AreaParcel, sign: int) -> AreaSums:
        a = _area(p)
        s = a if sign > 0 else -a

        def add(total: Decimal, cond: bool) -> Decimal:
            return _EXACT.add(total, s) if cond else total

        return replace(
            self,
            total_area=add(self.total_area, True),
            assessed_area=add(self.assessed_area, p.assessed),
            qualified_area=add(self.qualified_area, p.assessed and p.verdict == "qualified"),
            measured_area=add(self.measured_area, p.assessed and p.basis == MEASURED),
            estimated_area=add(self.estimated_area, p.assessed and p.basis == ESTIMATED),
            needs_sampling_area=add(self.needs_sampling_area, p.verdict == "needs_sampling"),
            parcel_count=self.parcel_count + sign,
            assessed_count=self.assessed_count + (sign if p.assessed else 0),
            qualified_count=self.qualified_count + (sign if p.assessed and p.verdict == "qualified" else 0),
            sample_count=self.sample_count + sign * p.samples,
            strict_count=self.strict_count + (sign if p.strict_control else 0),
        )

    def apply(self, old: AreaParcel | None, new: AreaParcel | None) -> AreaSums:
        """Sums after one parcel changed: ``old`` None = added, ``new`` None = removed."""
        sums = self if old is None else self._shift(old, -1)
        return sums if new is None else sums._shift(new, +1)


def _share(part: Decimal, whole: Decimal) -> Decimal:
    return _SHOW.divide(part, whole) if whole > 0 else _ZERO


def grade_from_sums(sums: AreaSums, min_coverage: Decimal | float, thresholds: Mapping[str, Any] | None = None,
                    ) -> str:
    """A/B/C on the qualified share of the assessed area; ``not_assessed`` below ``min_coverage``
    (compared exactly: assessed ≥ min_coverage·total)."""
    t = {k: to_decimal(v) for k, v in (thresholds or DEFAULT_ROLLUP).items()}
    cov = to_decimal(min_coverage)
    if sums.total_area <= 0 or sums.assessed_area <= 0 or sums.assessed_area < _EXACT.multiply(cov, sums.total_area):
        return NOT_ASSESSED
    if sums.strict_count > 0:
        return "C"
    for grade in ("A", "B"):
        if sums.qualified_area >= _EXACT.multiply(t[grade], sums.assessed_area):
            return grade
    return "C"


@dataclass(frozen=True)
class Lift:
    """How many samples on which parcels would bring an area to its minimum coverage (at most:
    each sample also values its neighbours, so fewer may do)."""

    samples: int
    parcels: tuple[str, ...]
    area_m2: Decimal

    def to_dict(self) -> dict[str, Any]:
        return {"samples_at_most": self.samples, "parcels": list(self.parcels), "area_m2": str(self.area_m2)}


def lift_plan(parcels: Iterable[AreaParcel], sums: AreaSums, min_coverage: Decimal | float) -> Lift | None:
    """The largest unassessed parcels first, until their area closes the coverage gap; None when
    coverage is already met or cannot be reached."""
    need = _EXACT.subtract(_EXACT.multiply(to_decimal(min_coverage), sums.total_area), sums.assessed_area)
    if need <= 0:
        return None
    open_ = [p for p in parcels if not p.assessed]
    picked, got = [], _ZERO
    for p in sorted(open_, key=lambda p: (-_area(p), p.code)):
        if got >= need:
            break
        picked.append(p.code)
        got = _EXACT.add(got, _area(p))
    if got < need:
        return None
    shown = tuple(picked[:SUGGEST_CAP])
    return Lift(len(picked), shown, got)


@dataclass(frozen=True)
class AreaAssessment:
    grade: str
    sums: AreaSums
    min_coverage: Decimal
    thresholds: Mapping[str, Decimal]
    lift: Lift | None = None
    holding_back: tuple[str, ...] = ()

    @property
    def coverage(self) -> Decimal:
        return _share(self.sums.assessed_area, self.sums.total_area)

    @property
    def qualified_share(self) -> Decimal:
        return _share(self.sums.qualified_area, self.sums.assessed_area)

    def density(self) -> Decimal:
        """Samples per hectare of the whole area."""
        ha = self.sums.total_area / _HA
        return _SHOW.divide(Decimal(self.sums.sample_count), ha) if ha > 0 else _ZERO

    def to_dict(self) -> dict[str, Any]:
        s = self.sums
        out: dict[str, Any] = {
            "grade": self.grade, "rule": RULE,
            "coverage": str(self.coverage), "min_coverage": str(self.min_coverage),
            "qualified_share": str(self.qualified_share),
            "total_area_m2": str(s.total_area), "assessed_area_m2": str(s.assessed_area),
            "measured_area_m2": str(s.measured_area), "estimated_area_m2": str(s.estimated_area),
            "needs_sampling_area_m2": str(s.needs_sampling_area),
            "qualified_area_m2": str(s.qualified_area), "parcel_count": s.parcel_count,
            "assessed_count": s.assessed_count, "qualified_count": s.qualified_count,
            "sample_count": s.sample_count, "samples_per_ha": str(self.density()),
            "strict_control_count": s.strict_count,
            "thresholds": {k: str(v) for k, v in self.thresholds.items()},
            "holding_back": list(self.holding_back),
        }
        if self.grade == NOT_ASSESSED:
            out["lift"] = self.lift.to_dict() if self.lift else None
            out["message"] = _not_assessed_message(self)
        return out


def _not_assessed_message(a: AreaAssessment) -> str:
    cov = f"{float(a.coverage):.0%}"
    need = f"{float(a.min_coverage):.0%}"
    if a.lift is None:
        return f"Not assessed: {cov} of the area has a verdict from samples, {need} is needed."
    return (f"Not assessed: {cov} of the area has a verdict from samples, {need} is needed; "
            f"at most {a.lift.samples} samples, one on each of the largest unassessed parcels "
            f"({', '.join(a.lift.parcels[:5])}{', …' if a.lift.samples > 5 else ''}), would lift it.")


def assess_area(parcels: Iterable[AreaParcel], params: EstimationParams,
                thresholds: Mapping[str, Any] | None = None) -> AreaAssessment:
    parcels = list(parcels)
    sums = AreaSums()
    for p in parcels:
        sums = sums.apply(None, p)
    t = {k: to_decimal(v) for k, v in (thresholds or DEFAULT_ROLLUP).items()}
    cov = to_decimal(params.min_coverage)
    grade = grade_from_sums(sums, cov, t)
    lift = lift_plan(parcels, sums, cov) if grade == NOT_ASSESSED else None
    behind = [p for p in parcels if p.assessed and p.verdict != "qualified"]
    top = heapq.nsmallest(SUGGEST_CAP, behind, key=lambda p: (-_area(p), p.code))
    return AreaAssessment(grade, sums, cov, t, lift, tuple(p.code for p in top))


def area_certifiable(a: AreaAssessment, params: EstimationParams) -> tuple[bool, list[str]]:
    """A village or farm park may be certified only at grade A with the pack's density met."""
    reasons = []
    if a.grade != "A":
        reasons.append("not_assessed" if a.grade == NOT_ASSESSED else f"below_grade_a:{a.grade}")
    if params.samples_per_ha is None:
        reasons.append("no_sample_density_in_pack")
    elif a.density() < to_decimal(params.samples_per_ha):
        reasons.append(f"sample_density_below:{params.samples_per_ha}")
    return (not reasons, reasons)


def parcel_certifiable(basis: str, verdict: str | None) -> tuple[bool, list[str]]:
    """A parcel only on measured values."""
    if basis != MEASURED:
        return False, [f"basis_{basis}"]
    if verdict != "qualified":
        return False, [str(verdict)]
    return True, []
