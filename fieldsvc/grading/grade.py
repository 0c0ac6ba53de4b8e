"""The grading engine: approved results in, a verdict with its explanation out.

Plain values only (no Flask, no database), so the API, the PDF certificate and the public
page render the same object, and a re-grade is a pure function of its inputs.

Rules shared by every pack:

- each sample is judged in *its own* pH band; a sample without a usable pH cannot be judged;
- a censored value (``<DL``) counts as ½·DL in indices and means and never as an exceedance;
  when it could still lie on the wrong side of a limit (DL above the limit) it is
  ``indeterminate`` and asks for a re-test;
- every analyte is judged on its worst sample, and the explanation names that sample;
  ties go to the smallest sample id, so sample order never changes a result;
- limits compare exactly (Decimal ``C > S``); indices are Decimal quotients (28 digits);
  Nemerow classes compare n²·max² + (ΣP)² with 2n²·edge², so no square root is rounded.

Green-food grade: ``grade`` is the NY/T 1054 Nemerow class when the parcel qualifies;
``failed_class`` (``polluted``) whenever any P_i > 1, because a single exceedance fails the
parcel whatever the Nemerow index says; ``None`` when the parcel is indeterminate (the index
would be computed from incomplete inputs). ``nemerow`` is shown whenever every analyte has an
index, i.e. also for not-qualified parcels, and is ``None`` otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any, NamedTuple

from fieldsvc.errors import Problem
from fieldsvc.grading.fingerprint import fingerprint, measurement_text
from fieldsvc.grading.rules import (
    Band,
    PhTable,
    RulePack,
    load_pack,
    lookup,
    lookup_below,
    parse_band,
    to_decimal,
)

PASS, INDETERMINATE, EXCEEDS = "pass", "indeterminate", "exceeds"
_STATES = (PASS, INDETERMINATE, EXCEEDS)
_EXACT = Context(prec=60)  # the displayed Nemerow value, before rounding to _SHOW
_SHOW = Context(prec=12)
_HALF = Decimal("0.5")
_ZERO = Decimal(0)
_PH_MAX = Decimal(14)
_NONE_INDEX = Decimal(-1)


@dataclass(frozen=True, slots=True)
class Measurement:
    """One approved lab result in its canonical unit; ``value`` is None when censored (``<``).

    ``text`` is its fragment of the inputs fingerprint, written once here (a county run
    fingerprints each stored result many times over).
    """

    analyte: str
    qualifier: str
    value: Decimal | None
    detection_limit: Decimal | None
    unit: str
    text: str = field(default="", compare=False, repr=False)
    fault: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", measurement_text(self.analyte, self.qualifier, self.value,
                                                          self.detection_limit, self.unit))
        object.__setattr__(self, "fault", _fault(self.qualifier, self.value, self.detection_limit))


@dataclass(frozen=True, slots=True)
class SampleInput:
    sample_id: str
    sample_code: str
    measurements: Mapping[str, Measurement]


def _text(d: Decimal | None) -> str | None:
    return None if d is None else str(d)


def _show(d: Decimal | None) -> str | None:
    return None if d is None else str(_SHOW.plus(d))


def _problem(m: Measurement, unit: str) -> str | None:
    """Why a result cannot be used at all against a table in ``unit`` (None when it can)."""
    return "unit_mismatch" if m.unit != unit else m.fault


def _fault(qualifier: str, value: Decimal | None, detection_limit: Decimal | None) -> str | None:
    """Why a result cannot be used whatever the table (``Measurement.fault``): decided once per
    measurement, not at each of the comparisons a county run makes with it (the engine asks it for
    every result of every parcel). A value that cannot be compared (NaN, not a Decimal) is left to
    the comparison with the limit, which raises as before (``grade_parcel`` answers 422)."""
    try:
        if qualifier == "=":
            if value is None:
                return "no_value"
            return "invalid_value" if value < 0 else None
        if qualifier == "<":
            return "no_detection_limit" if detection_limit is None or detection_limit <= 0 else None
    except (InvalidOperation, TypeError):
        return None
    return "unknown_qualifier"


def _usable_ph(meas: Mapping[str, Measurement]) -> tuple[Decimal | None, str]:
    m = meas.get("pH")
    if m is None or m.qualifier != "=" or m.value is None:
        return None, "no_ph"
    if not _ZERO <= m.value <= _PH_MAX:
        return None, "invalid_ph"
    return m.value, ""


def _row(analyte: str, verdict: str, reason: str | None, sample: SampleInput | None, m: Measurement | None,
         unit: str, limit: Decimal | None, band: str | None, index: Decimal | None) -> dict[str, Any]:
    return {
        "analyte": analyte,
        "value": _text(m.value) if m else None,
        "qualifier": m.qualifier if m else None,
        "detection_limit": _text(m.detection_limit) if m else None,
        "unit": m.unit if m else unit,
        "limit": _text(limit),
        "band": band,
        "index": _show(index),
        "verdict": verdict,
        "reason": reason,
        "sample_id": sample.sample_id if sample else None,
        "sample_code": sample.sample_code if sample else None,
    }


# --- green food (NY/T 391 + NY/T 1054) -----------------------------------------------------
# The loop in ``_grade_green`` is the one statement of how a result compares with its limit. It
# keeps, per analyte, only the worst state (0 pass, 1 indeterminate, 2 exceeds), its index, the
# sample and the reason; the explanation row is built from those when it is asked for (the
# measurement, limit and band are read again from that sample, never judged again).


class _NemerowPlan(NamedTuple):
    """A pack's Nemerow classes for ``n`` analytes, read once: the shortcut's first class edge
    (P ≤ max P_i, so max P_i within it is that class) and every edge squared and scaled (2n²e²),
    or, for a pack that rounds P first, its places and bands."""

    round_to: int | None
    first: tuple[Decimal | None, bool, str]
    squared: tuple[tuple[Decimal | None, bool, str], ...]
    bands: tuple[tuple[Band, str], ...]


def _nemerow_plan(pack: RulePack, n: int) -> _NemerowPlan:
    """The pack's ``nemerow_classes`` by upper edge (the open band last)."""
    bands = sorted(((parse_band(k), c) for k, c in pack.data["nemerow_classes"].items()),
                   key=lambda bc: (bc[0].hi is None, bc[0].hi or 0))
    scale = 2 * n * n
    squared = tuple((None if b.hi is None else scale * b.hi * b.hi, b.hi_incl, c) for b, c in bands)
    first, cls = bands[0]
    return _NemerowPlan(pack.nemerow_round_to, (first.hi, first.hi_incl, cls), squared, tuple(bands))


class _GreenPlan(NamedTuple):
    """What grading a parcel reads from a pack for one land use, made once (``_green_plan``) so the
    per-parcel loop does no lookups in the pack: the pH table, its rows as limits only, a pH → row
    memo, the failed class and the Nemerow classes."""

    table: PhTable
    analytes: tuple[str, ...]
    unit: str
    limit_rows: tuple[tuple[Decimal, ...], ...]
    memo: dict[Decimal, tuple[Decimal, ...]]
    columns: range
    failed_class: str
    nemerow: _NemerowPlan


def _green_plan(pack: RulePack, land_use: str) -> _GreenPlan:
    """The plan for a land use, made on first use and kept with the pack's other tables."""
    plans = pack._tables.setdefault("__green__", {})
    plan = plans.get(land_use)
    if plan is None:
        table = pack.ph_table(land_use)
        limits = tuple(tuple(cell[0] for cell in row) for row in table.rows)
        n = len(table.analytes)
        plan = plans[land_use] = _GreenPlan(table, table.analytes, table.unit, limits, {}, range(n),
                                            pack.data["failed_class"], _nemerow_plan(pack, n))
    return plan


_MEMO_MAX = 20_000  # distinct pH values remembered per land use (lab pH has two decimals: ≤ 1,401)


def _limits_for(meas: Mapping[str, Measurement], plan: _GreenPlan) -> tuple | None:
    """The row of limits for a sample's pH (None when it has no usable pH), remembered per pH value:
    the loop looks a usable pH up in ``plan.memo`` first (it holds no other value)."""
    ph, _ = _usable_ph(meas)
    if ph is None:
        return None
    memo = plan.memo
    if len(memo) >= _MEMO_MAX:
        memo.clear()
    row = memo[ph] = plan.limit_rows[plan.table.segment(ph)]
    return row


def grade_parcel(land_use: str, samples: Sequence[SampleInput], pack: RulePack) -> ParcelGrade:
    """Green-food verdict, NY/T 1054 class and per-analyte explanation for one parcel."""
    if pack.kind != "green_food_soil":
        pack.check_kind("green_food_soil")
    try:
        return _grade_green(land_use, samples, pack)
    except (InvalidOperation, TypeError):  # NaN, infinity or a non-Decimal value
        raise Problem(422, "invalid_measurement", "A result is not a finite decimal number.",
                      land_use=land_use) from None


def _grade_green(land_use: str, samples: Sequence[SampleInput], pack: RulePack) -> ParcelGrade:
    """The engine's hot loop (a county run calls it once a parcel): every lookup in the pack is in
    the plan, the rule is written out where it is asked, and nothing is built that the verdict
    does not need (``bench/grading_engine.py``)."""
    plans = pack._tables.get("__green__")
    plan = plans.get(land_use) if plans else None
    if plan is None:
        plan = _green_plan(pack, land_use)
    table, analytes, unit, _, memo, columns, failed_class, nemerow = plan  # unpacked: named fields read slower
    prepared = []
    for s in samples:
        meas = s.measurements
        p = meas.get("pH")
        limits = memo.get(p.value) if p is not None and p.qualifier == "=" else None
        if limits is None:
            limits = _limits_for(meas, plan)
        prepared.append((s, meas, limits))
    worst, limiting, indices = [], [], []
    exceeds = indeterminate = False
    for i in columns:
        analyte = analytes[i]
        best_st = -1
        best_idx = best_s = best_why = None
        for s, meas, limits in prepared:
            # how a result compares with its limit: (state, index, why)
            m = meas.get(analyte)
            if m is None:
                st, idx, why = 1, None, "not_measured"
            elif limits is None:
                st, idx, why = 1, None, _usable_ph(meas)[1]
            else:
                limit = limits[i]
                why = "unit_mismatch" if m.unit != unit else m.fault  # ``_problem``, spelled out
                if why:
                    st, idx = 1, None
                elif m.qualifier == "=":
                    v = m.value
                    st, why = (2, "above_limit") if v > limit else (0, "within_limit")
                    idx = v / limit
                else:  # censored: half the detection limit, never an exceedance
                    dl = m.detection_limit
                    idx = dl * _HALF / limit
                    st, why = (1, "detection_limit_above_limit") if dl > limit else (0, "below_detection_limit")
            # the worst state wins; then the higher index; ties go to the smaller sample id
            if st > best_st or (st == best_st and ((st != 1 and idx > best_idx) or (
                    (st == 1 or idx == best_idx) and s.sample_id < best_s.sample_id))):
                best_st = st
                best_idx = idx
                best_s = s
                best_why = why
        worst.append((best_st, best_idx, best_s, best_why))
        indices.append(best_idx)
        if best_st:  # -1 (no sample at all) counts as indeterminate
            limiting.append(analyte)
            if best_st == 2:
                exceeds = True
            else:
                indeterminate = True
    if exceeds:
        verdict, grade = "not_qualified", failed_class
    elif indeterminate:
        verdict, grade = "indeterminate", None
    else:
        verdict, grade = "qualified", _nemerow_class(nemerow, indices)
    return _parcel_grade(verdict, grade, tuple(limiting), pack, land_use, samples, table, worst)


def _nemerow_sq(indices: list, mx: Decimal | None = None) -> Decimal:
    """n²·max P_i² + (Σ P_i)²: P ≤ e  ⇔  this ≤ 2n²e², so classes need no square root.
    ``mx``: max P_i when the caller has it already."""
    if mx is None:
        mx = max(indices)
    total = sum(indices, _ZERO)
    n = len(indices)
    return n * n * mx * mx + total * total


def _rounded_nemerow(indices: list, places: int) -> Decimal:
    """P rounded half-up to ``places`` decimals, as a pack with ``nemerow_round_to`` states."""
    n = len(indices)
    p = _EXACT.sqrt(_EXACT.divide(_nemerow_sq(indices), 2 * n * n))
    return p.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _nemerow_class(plan: _NemerowPlan, indices: list) -> str:
    round_to, (edge, incl, cls), squared, bands = plan
    if round_to is not None:  # the pack's classes apply to P as rounded
        p = _rounded_nemerow(indices, round_to)
        for band, cls in bands:
            if band.contains(p):
                return cls
        raise LookupError(p)  # unreachable: validated bands cover the line
    mx = max(indices)
    if edge is None or mx < edge or (incl and mx == edge):
        return cls  # P ≤ max P_i, so the cleanest class already holds
    nem_sq = _nemerow_sq(indices, mx)
    for edge, incl, cls in squared:
        if edge is None or nem_sq < edge or (incl and nem_sq == edge):
            return cls
    raise LookupError(nem_sq)  # unreachable: the last band is open


def _disputed_note(pack: RulePack, analyte: str, band: str | None, m: Measurement | None,
                   limit: Decimal | None) -> str | None:
    """The pack's note on a disputed cell, when that cell decides this analyte's verdict: the
    verdict would differ under one of the values the other sources give."""
    cell = pack.disputed_cell(analyte, band)
    if cell is None or m is None or m.value is None or m.qualifier != "=" or limit is None:
        return None
    factor = limit / to_decimal(cell["value"])
    over = m.value > limit
    if any((m.value > to_decimal(a) * factor) != over for a in cell["alternatives"]):
        return cell["note"]
    return None


class ParcelGrade:
    """A green-food parcel result. Explanation, Nemerow value and fingerprint are built on first use,
    so grading many parcels stays cheap while each result can still explain itself. Made by
    ``_parcel_grade`` (no ``__init__``)."""

    __slots__ = ("verdict", "grade", "limiting", "land_use", "_pack", "_samples", "_table", "_worst",
                 "_fingerprint")

    verdict: str
    grade: str | None
    limiting: tuple[str, ...]
    land_use: str
    _pack: RulePack
    _samples: Sequence[SampleInput]
    _table: PhTable
    _worst: list[tuple]  # per analyte: (state, index, sample, reason)
    _fingerprint: str | None

    @property
    def qualified(self) -> bool:
        return self.verdict == "qualified"

    @property
    def pack(self) -> dict[str, Any]:
        return self._pack.ref

    @property
    def nemerow(self) -> Decimal | None:
        """P = sqrt((max P_i² + mean P_i²) / 2) to 12 digits; None when any analyte is indeterminate."""
        if any(w[0] in (1, -1) for w in self._worst):
            return None
        n = len(self._worst)
        if self._pack.nemerow_round_to is not None:
            return _rounded_nemerow([w[1] for w in self._worst], self._pack.nemerow_round_to)
        return _SHOW.sqrt(_EXACT.divide(_nemerow_sq([w[1] for w in self._worst]), 2 * n * n))

    @property
    def explanation(self) -> list[dict[str, Any]]:
        rows = []
        table = self._table
        unit = table.unit
        for i, analyte in enumerate(table.analytes):
            state, index, sample, reason = self._worst[i]
            if sample is None:
                rows.append(_row(analyte, INDETERMINATE, "not_measured", None, None, unit, None, None, None))
                continue
            meas = sample.measurements
            m = meas.get(analyte)
            ph, _ = _usable_ph(meas)
            limit, band = table.row_for(ph)[i] if m is not None and ph is not None else (None, None)
            row = _row(analyte, _STATES[state], reason, sample, m, unit, limit, band, index)
            note = _disputed_note(self._pack, analyte, band, m, limit)
            if note:
                row["disputed"] = note
            rows.append(row)
        return rows

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            p = self._pack
            self._fingerprint = fingerprint([(p.code, p.version)], self.land_use, self._samples,
                                            (*self._table.analytes, "pH"))
        return self._fingerprint

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "qualified": self.qualified,
            "grade": self.grade,
            "nemerow": _text(self.nemerow),
            "limiting": list(self.limiting),
            "land_use": self.land_use,
            "explanation": self.explanation,
            "pack": self.pack,
            "fingerprint": self.fingerprint,
        }

    def __repr__(self) -> str:
        return f"ParcelGrade({self.verdict!r}, grade={self.grade!r}, limiting={list(self.limiting)!r})"


_new_object = object.__new__


def _parcel_grade(verdict: str, grade: str | None, limiting: tuple[str, ...], pack: RulePack, land_use: str,
                  samples: Sequence[SampleInput], table: PhTable, worst: list[tuple]) -> ParcelGrade:
    """A ParcelGrade (the only way one is made): its slots set directly, because a Python ``__init__``
    reached through ``type.__call__`` cost ~4 % of grading a parcel in ``bench/grading_engine.py``."""
    g = _new_object(ParcelGrade)
    g.verdict = verdict
    g.grade = grade
    g.limiting = limiting
    g.land_use = land_use
    g._pack = pack
    g._samples = samples
    g._table = table
    g._worst = worst
    g._fingerprint = None
    return g


# --- classifications (GB 15618, fertility, micronutrients, Se) -------------------------------
# An observation is (lo, hi, index, reason, sample, measurement, limit, band, extra): the best and
# worst class rank the true value allows (equal when known), so censored values and missing data
# narrow a class instead of guessing it.


@dataclass(frozen=True)
class ClassGrade:
    """A parcel's class under a classifying pack, with the same explanation rows as ParcelGrade."""

    kind: str
    grade: str | None
    verdict: str
    limiting: tuple[str, ...]
    explanation: list[dict[str, Any]]
    pack: dict[str, Any]
    fingerprint: str
    land_use: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def qualified(self) -> bool:
        return self.verdict == "qualified"

    @property
    def strict_control(self) -> bool:
        """True only when strict control is certain (what caps an area's roll-up at C)."""
        return self.grade == "strict_control"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "verdict": self.verdict, "qualified": self.qualified, "grade": self.grade,
            "limiting": list(self.limiting), "land_use": self.land_use, "explanation": self.explanation,
            "pack": self.pack, "fingerprint": self.fingerprint, **self.details,
        }


def _sorted(samples: Sequence[SampleInput]) -> list[SampleInput]:
    return sorted(samples, key=lambda s: (s.sample_id, s.sample_code))


def _combine(observations: list[tuple], top: int) -> tuple:
    """One analyte over its samples: bounds are the worst of each; names the sample that decides."""
    if not observations:
        return (0, top, None, "not_measured", None, None, None, None, None)
    lo = max(o[0] for o in observations)
    hi = max(o[1] for o in observations)
    if lo == hi:
        named = max(observations, key=lambda o: (o[0], _NONE_INDEX if o[2] is None else o[2]))
    else:
        named = max((o for o in observations if o[0] < o[1] == hi), key=lambda o: o[1])
    return (lo, hi, *named[2:])


def _measured_ranks(m: Measurement | None, unit: str, rank_of, rank_below,
                    top: int) -> tuple[int, int, str | None]:
    """Class bounds for one result: exact for a value, a range for ``<DL`` (true value in [0, DL))."""
    if m is None:
        return 0, top, "not_measured"
    reason = _problem(m, unit)
    if reason:
        return 0, top, reason
    if m.qualifier == "=":
        r = rank_of(m.value)
        return r, r, None
    a, b = rank_of(_ZERO), rank_below(m.detection_limit)
    return min(a, b), max(a, b), "below_detection_limit"


def _classify_bands(pack: RulePack, land_use: str, samples: Sequence[SampleInput]) -> ClassGrade:
    """Fertility and micronutrients: value bands → classes, per land-use column; worst class wins."""
    classes = list(pack.classes)
    top = len(classes) - 1
    lu = pack.data.get("land_uses")
    if lu is not None:
        pack.check_land_use(land_use)
    columns = lu[land_use]["columns"] if lu else ["all"]
    fallbacks = pack.data.get("fallback_columns", [])
    samples = _sorted(samples)
    rows, limiting, parcel_lo, parcel_hi = [], [], 0, 0
    for analyte, spec in pack.data["indicators"].items():
        by_col = spec["columns"]
        tables = [(c, by_col[c]) for c in (_resolve_col(by_col, col, fallbacks) for col in columns)]
        tables = [(c, [(b, classes.index(k)) for b, k in _bands(t)]) for c, t in tables if t is not None]
        if not tables:
            rows.append(_row(analyte, "not_applicable", "not_graded_for_land_use", None, None, spec["unit"],
                             None, None, None) | {"class": None})
            continue
        obs = [_band_observation(s, analyte, spec["unit"], tables, top) for s in samples]
        lo, hi, _, reason, sample, m, _, band, _ = _combine(obs, top)
        parcel_lo, parcel_hi = max(parcel_lo, lo), max(parcel_hi, hi)
        if hi > 0:
            limiting.append(analyte)
        verdict = "classified" if lo == hi else INDETERMINATE
        rows.append(_row(analyte, verdict, reason, sample, m, spec["unit"], None, band, None)
                    | {"class": classes[lo] if lo == hi else None})
    grade = classes[parcel_lo] if parcel_lo == parcel_hi else None
    verdict = "classified" if grade is not None else INDETERMINATE
    analytes = (*pack.data["indicators"], "pH")
    return ClassGrade(pack.kind, grade, verdict, tuple(limiting), rows, pack.ref,
                      fingerprint([(pack.code, pack.version)], land_use, samples, analytes), land_use)


def _resolve_col(by_col: Mapping, col: str, fallbacks: list[str]) -> str:
    return col if col in by_col else next(f for f in fallbacks if f in by_col)


def _bands(bandmap: Mapping[str, str]) -> list:
    return [(parse_band(k), v) for k, v in bandmap.items()]


def _band_observation(sample: SampleInput, analyte: str, unit: str, tables: list, top: int) -> tuple:
    m = sample.measurements.get(analyte)
    lo = hi = 0
    reason = band_label = None
    for col, table in tables:
        a, b, reason = _measured_ranks(m, unit, lambda v, t=table: lookup(t, v),
                                       lambda v, t=table: lookup_below(t, v), top)
        lo, hi = max(lo, a), max(hi, b)
        if m is not None and m.value is not None and reason is None:
            band = next(bd for bd, _ in table if bd.contains(m.value))
            band_label = f"{col} {band.label(analyte)}"
    if lo < hi and reason == "below_detection_limit":
        reason = "detection_limit_above_limit"
    return (lo, hi, None, reason, sample, m, None, band_label, None)


_GB_REASONS = ("within_screening", "above_screening", "above_intervention")


def classify_gb15618(land_use: str, samples: Sequence[SampleInput], pack: RulePack) -> ClassGrade:
    """GB 15618-2018 class: priority_protection (≤ every screening value), strict_control (any of
    Cd/Hg/As/Pb/Cr above its intervention value), safe_use otherwise."""
    pack.check_kind("gb15618")
    table = pack.ph_table(land_use)
    classes, unit = pack.classes, table.unit
    samples = _sorted(samples)
    rows, limiting, parcel_lo, parcel_hi = [], [], 0, 0
    for i, analyte in enumerate(table.analytes):
        obs = [_gb_observation(s, i, analyte, table) for s in samples]
        top = 1 if table.rows[0][i][2] is None else 2
        lo, hi, index, reason, sample, m, limit, band, extra = _combine(obs, top)
        parcel_lo, parcel_hi = max(parcel_lo, lo), max(parcel_hi, hi)
        verdict = PASS if hi == 0 else EXCEEDS if lo >= 1 else INDETERMINATE
        if hi > 0:
            limiting.append(analyte)
        reason = reason or _GB_REASONS[lo]
        extra = extra or {"intervention": None, "intervention_band": None}
        rows.append(_row(analyte, verdict, reason, sample, m, unit, limit, band, index)
                    | {"class": classes[lo] if lo == hi else None, **extra})
    grade = classes[parcel_lo] if parcel_lo == parcel_hi else None
    verdict = "qualified" if parcel_hi == 0 else "not_qualified" if parcel_lo >= 1 else INDETERMINATE
    fp = fingerprint([(pack.code, pack.version)], land_use, samples, (*table.analytes, "pH"))
    return ClassGrade(pack.kind, grade, verdict, tuple(limiting), rows, pack.ref, fp, land_use)


def gb15618_class(land_use: str, samples: Sequence[SampleInput], pack: RulePack) -> tuple[str | None, str]:
    """``(grade, fingerprint)`` of ``classify_gb15618`` without its explanation rows.

    What a grading run needs to know whether a parcel that fails the green-food pack is strict
    control: the same class bounds per result (``_gb_ranks``, the one statement of the rule),
    combined the same way, without the rows' words and indices.
    """
    pack.check_kind("gb15618")
    table = pack.ph_table(land_use)
    unit, first = table.unit, table.rows[0]
    phs = [(s.measurements, _usable_ph(s.measurements)[0]) for s in samples]
    parcel_lo = parcel_hi = 0
    for i, analyte in enumerate(table.analytes):
        top = 1 if first[i][2] is None else 2
        if not phs:
            parcel_hi = max(parcel_hi, top)
        for meas, ph in phs:
            m = meas.get(analyte)
            lo, hi = (0, top) if m is None or ph is None else _gb_ranks(m, table.row_for(ph)[i], unit, top)[:2]
            parcel_lo, parcel_hi = max(parcel_lo, lo), max(parcel_hi, hi)
    grade = pack.classes[parcel_lo] if parcel_lo == parcel_hi else None
    return grade, fingerprint([(pack.code, pack.version)], land_use, samples, (*table.analytes, "pH"))


def _gb_ranks(m: Measurement, row: tuple, unit: str, top: int) -> tuple[int, int, str | None]:
    """GB 15618 class bounds of one result at its sample's pH (``row``: that pH's screening and
    intervention values for the analyte): 0 within screening, 1 above it, 2 above intervention;
    a ``<DL`` result a range, an unusable one the full range with its reason."""
    screen, _, interv, _ = row

    def rank(v: Decimal) -> int:
        return 2 if interv is not None and v > interv else 1 if v > screen else 0

    return _measured_ranks(m, unit, rank, rank, top)


def _gb_observation(sample: SampleInput, i: int, analyte: str, table) -> tuple:
    m = sample.measurements.get(analyte)
    ph, ph_reason = _usable_ph(sample.measurements)
    top_default = 2 if table.rows[0][i][2] is not None else 1
    if m is None or ph is None:
        return (0, top_default, None, "not_measured" if m is None else ph_reason, sample, m, None, None, None)
    row = table.row_for(ph)[i]
    screen, s_band, interv, i_band = row
    extra = {"intervention": _text(interv), "intervention_band": i_band}
    lo, hi, reason = _gb_ranks(m, row, table.unit, top_default)
    index = None
    if reason in (None, "below_detection_limit"):
        index = (m.value if m.qualifier == "=" else m.detection_limit * _HALF) / screen
        if hi > lo:
            reason = "detection_limit_above_limit"
    return (lo, hi, index, reason, sample, m, screen, s_band, extra)


def classify_fertility(land_use: str, samples: Sequence[SampleInput], pack: RulePack) -> ClassGrade:
    """NY/T 391 fertility class I/II/III; the parcel takes its worst indicator's class."""
    pack.check_kind("fertility")
    return _classify_bands(pack, land_use, samples)


def classify_micronutrients(land_use: str, samples: Sequence[SampleInput], pack: RulePack) -> ClassGrade:
    """DZ/T 0295 five classes for B, Mo, Mn, Zn, Cu; the parcel takes its poorest element's class."""
    pack.check_kind("micronutrients")
    return _classify_bands(pack, land_use, samples)


_SE_STATUS = ("se_rich", "not_se_rich", "se_excess")  # ranks 0, 1, 2 (worse wins when combined)


def classify_se(land_use: str, samples: Sequence[SampleInput], pack: RulePack, *,
                screening_pack: RulePack | None = None, green_pack: RulePack | None = None) -> ClassGrade:
    """DZ/T 0380 Se-rich land; green_se_rich also needs GB 15618 priority protection and NY/T 391."""
    pack.check_kind("se_rich")
    req = pack.data["requires"]
    screening_pack = screening_pack or load_pack(req["screening"])
    green_pack = green_pack or load_pack(req["green_food"])
    samples = _sorted(samples)
    unit = pack.data.get("unit", "mg/kg")
    se_min = [(b, to_decimal(v)) for b, v in _bands(pack.data["se_min"])]
    se_max = to_decimal(pack.data["se_max"])
    obs = [_se_observation(s, unit, se_min, se_max) for s in samples]
    lo, hi, index, reason, sample, m, limit, band, _ = _combine(obs, 2)
    se_row = _row("Se", PASS if hi == 0 else EXCEEDS if lo >= 1 else INDETERMINATE,
                  reason or ("se_rich" if lo == 0 else "below_se_threshold" if lo == 1 else "above_se_upper"),
                  sample, m, unit, limit, band, index) | {"class": _SE_STATUS[lo] if lo == hi else None,
                                                          "upper_limit": _text(se_max)}
    gb = classify_gb15618(land_use, samples, screening_pack)
    gf = grade_parcel(land_use, samples, green_pack)
    if lo == hi == 0:
        if gb.verdict == gf.verdict == "qualified":
            grade, verdict = "green_se_rich", "qualified"
        elif "not_qualified" in (gb.verdict, gf.verdict):
            grade, verdict = "se_rich", "not_qualified"
        else:
            grade, verdict = None, INDETERMINATE
    else:
        grade = _SE_STATUS[lo] if lo == hi else None
        verdict = "not_qualified" if lo >= 1 else INDETERMINATE
    limiting = (["Se"] if hi > 0 else []) + [a for a in (*gb.limiting, *gf.limiting) if a != "Se"]
    metal_rows = [r | {"pack": res.pack["code"]} for res in (gb, gf) for r in res.explanation
                  if r["verdict"] != PASS]
    packs = [(p.code, p.version) for p in (pack, screening_pack, green_pack)]
    read = ("Se", "pH", *screening_pack.data["analytes"], *green_pack.data["analytes"])
    fp = fingerprint(packs, land_use, samples, read)
    details = {"requirements": {gb.pack["code"]: {"verdict": gb.verdict, "grade": gb.grade},
                                gf.pack["code"]: {"verdict": gf.verdict, "grade": gf.grade}}}
    return ClassGrade(pack.kind, grade, verdict, tuple(dict.fromkeys(limiting)), [se_row, *metal_rows],
                      pack.ref, fp, land_use, details)


def _se_observation(sample: SampleInput, unit: str, se_min: list, se_max: Decimal) -> tuple:
    m = sample.measurements.get("Se")
    ph, ph_reason = _usable_ph(sample.measurements)
    if m is None or ph is None:
        return (0, 2, None, "not_measured" if m is None else ph_reason, sample, m, None, None, None)
    threshold = lookup(se_min, ph)
    band = next(b for b, _ in se_min if b.contains(ph)).label()

    def rank(v: Decimal) -> int:
        return 2 if v > se_max else 1 if v < threshold else 0

    lo, hi, reason = _measured_ranks(m, unit, rank, rank, 2)
    if reason == "below_detection_limit":  # true value in [0, dl): always possibly below the threshold
        dl = m.detection_limit
        if dl > threshold:
            lo, hi, reason = 0, (2 if dl > se_max else 1), "detection_limit_above_limit"
        else:
            lo = hi = 1
    index = None
    if m.qualifier in ("=", "<") and reason in (None, "below_detection_limit", "detection_limit_above_limit"):
        index = (m.value if m.qualifier == "=" else m.detection_limit * _HALF) / threshold
    return (lo, hi, index, reason, sample, m, threshold, band, None)


# --- dispatch ----------------------------------------------------------------------------


def evaluate(pack: RulePack, land_use: str, samples: Sequence[SampleInput]) -> ParcelGrade | ClassGrade:
    """Grade one parcel with whatever kind of pack is given."""
    grader = _BY_KIND.get(pack.kind)
    if grader is None:
        raise Problem(500, "invalid_rule_pack", f"No grader for pack kind {pack.kind!r}.", pack=pack.code)
    return grader(land_use, samples, pack)


_BY_KIND = {
    "green_food_soil": grade_parcel,
    "gb15618": classify_gb15618,
    "fertility": classify_fertility,
    "micronutrients": classify_micronutrients,
    "se_rich": classify_se,
}
