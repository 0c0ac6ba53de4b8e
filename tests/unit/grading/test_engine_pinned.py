"""The green-food engine's results, pinned byte for byte on a varied set of parcels.

Written before the engine was made faster (``bench/grading_engine.py``), so that a change to how
it computes cannot change what it says: verdict, grade, limiting analytes, Nemerow value, every
explanation row (disputed notes included), the fingerprint, and the problem raised for an input
that cannot be graded. The parcels are made from a fixed seed plus hand-written edges (pH on a
band edge, a value exactly on its limit, a detection limit above it, ties between samples, no pH,
units that differ, faults of every kind, an unknown land use, a pack that rounds P).

``engine_pinned.txt`` holds one line per parcel: its verdict and a digest of its canonical result.
Regenerate it only when a result is meant to change (and say why in the commit):
``.venv/bin/python tests/unit/grading/test_engine_pinned.py --write``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import sys
from decimal import Decimal
from pathlib import Path

if __name__ == "__main__":  # run as a script to rewrite the pinned file
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from fieldsvc.errors import Problem
from fieldsvc.grading.grade import Measurement, SampleInput, grade_parcel
from fieldsvc.grading.rules import LAND_USES, RulePack, load_pack

PINNED = Path(__file__).with_name("engine_pinned.txt")
GREEN = load_pack("green_food_soil")
METALS = ("Cd", "Hg", "As", "Pb", "Cr", "Cu")
TYPICAL = {"Cd": "0.12", "Hg": "0.1", "As": "9", "Pb": "22", "Cr": "55", "Cu": "24"}
# values on or next to every limit the pack has (dryland, paddy, orchard Cu x2)
EDGES = {"Cd": ("0.30", "0.40", "0.3000", "0.30001"), "Hg": ("0.25", "0.30", "0.35", "0.40", "0.2500001"),
         "As": ("25", "20", "15", "20.0", "15.00001"), "Pb": ("50", "50.00", "49.9999"),
         "Cr": ("120", "120.0000001"), "Cu": ("50", "55", "60", "100", "120", "59.99")}
PHS = ("6.5", "7.5", "6.49", "7.51", "6.50", "7.500", "0", "14", "14.01", "-0.1", "5.0", "8.2", "6.4999999")
LAND = (*LAND_USES, "sediment")


def _rounding_pack() -> RulePack:
    """The same limits with P rounded to two decimals before its class (as a published study does)."""
    data = copy.deepcopy(dict(GREEN.data))
    data["nemerow_round_to"] = 2
    data["nemerow_classes"] = {"<0.7": "clean", ">=0.7,<=1.0": "still_clean", ">1.0": "polluted"}
    data["version"] = "pinned.1"
    return RulePack.from_data(data)


ROUNDING = _rounding_pack()


def _value(rng: random.Random, analyte: str) -> str:
    roll = rng.random()
    if roll < 0.03:
        return rng.choice(EDGES[analyte])
    scale = rng.choice((0.3, 0.8, 1.5, 2.0)) if roll < 0.1 else 1.0
    v = float(TYPICAL[analyte]) * rng.lognormvariate(0, 0.35) * scale
    return str(round(v, rng.choice((1, 2, 3, 4, 6))))


def _measurement(rng: random.Random, analyte: str) -> Measurement:
    roll = rng.random()
    unit = "mg/kg" if rng.random() > 0.01 else rng.choice(("µg/kg", ""))
    if roll < 0.06:  # censored: detection limit below, on or above the limit
        dl = rng.choice(("0.05", "0.3", "0.6", "25", "30", "50", "120", "200", "0.001"))
        return Measurement(analyte, "<", None, Decimal(dl), unit)
    if roll < 0.07:  # faults of every kind
        kind = rng.randrange(5)
        if kind == 0:
            return Measurement(analyte, "=", None, None, unit)
        if kind == 1:
            return Measurement(analyte, "=", Decimal("-0.1"), None, unit)
        if kind == 2:
            return Measurement(analyte, "<", None, None, unit)
        if kind == 3:
            return Measurement(analyte, "<", None, Decimal(0), unit)
        return Measurement(analyte, ">", Decimal("1"), None, unit)
    return Measurement(analyte, "=", Decimal(_value(rng, analyte)), None, unit)


def _ph(rng: random.Random) -> Measurement | None:
    roll = rng.random()
    if roll < 0.05:
        return None
    if roll < 0.07:
        return Measurement("pH", "<", None, Decimal("4"), "")
    if roll < 0.08:
        return Measurement("pH", "=", None, None, "")
    if roll < 0.25:
        return Measurement("pH", "=", Decimal(rng.choice(PHS)), None, "")
    return Measurement("pH", "=", Decimal(str(round(rng.uniform(4.5, 8.8), rng.choice((1, 2))))), None, "")


def _sample(rng: random.Random, sid: str) -> SampleInput:
    ms: dict[str, Measurement] = {}
    for a in METALS:
        if rng.random() > 0.04:
            ms[a] = _measurement(rng, a)
    ph = _ph(rng)
    if ph is not None:
        ms["pH"] = ph
    if rng.random() < 0.1:
        ms["Zn"] = Measurement("Zn", "=", Decimal("80"), None, "mg/kg")  # read by no green-food rule
    if rng.random() < 0.15:  # insertion order of the mapping must not matter
        ms = dict(sorted(ms.items(), reverse=True))
    return SampleInput(sid, f"BAG-{sid}", ms)


def _random_parcels(rng: random.Random, n: int) -> list[tuple[str, list[SampleInput], RulePack]]:
    parcels = []
    for k in range(n):
        count = rng.choice((1, 1, 1, 2, 2, 3, 4))
        ids = [f"s{k:04d}{j}" for j in range(count)]
        if count > 1 and rng.random() < 0.1:
            ids[1] = ids[0]  # one id twice: the tie-break by id cannot separate them
        samples = [_sample(rng, sid) for sid in ids]
        if count > 1 and rng.random() < 0.2:  # a copy of a sample: ties on index
            samples.append(SampleInput(f"t{k:04d}", "BAG-copy", dict(samples[0].measurements)))
        rng.shuffle(samples)
        pack = ROUNDING if rng.random() < 0.15 else GREEN
        parcels.append((rng.choice(LAND), samples, pack))
    return parcels


def _exact(values: dict[str, str], ph: str = "6.0", sid: str = "e1") -> SampleInput:
    ms = {a: Measurement(a, "=", Decimal(v), None, "mg/kg") for a, v in values.items()}
    ms["pH"] = Measurement("pH", "=", Decimal(ph), None, "")
    return SampleInput(sid, f"BAG-{sid}", ms)


def _hand_parcels() -> list[tuple[str, list[SampleInput], RulePack]]:
    dry = {"Cd": "0.30", "Hg": "0.25", "As": "25", "Pb": "50", "Cr": "120", "Cu": "50"}  # dryland pH<6.5
    at = {a: str(Decimal(v) * Decimal("0.7")) for a, v in dry.items()}  # every P_i 0.7: P exactly 0.7
    small = {a: "0.0001" for a in METALS}
    near = {**small, "Cd": "0.2915"}  # P 0.6966 unrounded, 0.70 rounded
    nan = {**small, "Cd": "NaN"}
    return [
        ("dryland", [], GREEN),
        ("dryland", [_exact(dry)], GREEN),
        ("dryland", [_exact(at)], GREEN),
        ("dryland", [_exact(at)], ROUNDING),
        ("dryland", [_exact(near)], GREEN),
        ("dryland", [_exact(near)], ROUNDING),
        ("dryland", [_exact({**dry, "Cd": "0.3000001"})], GREEN),
        ("paddy", [_exact({**small, "Cu": "55"})], GREEN),  # the disputed cell decides
        ("paddy", [_exact({**small, "Cu": "65"})], GREEN),
        ("paddy", [_exact({**small, "Cu": "45"})], GREEN),
        ("paddy", [_exact({**small, "Cu": "55"}, sid="b"), _exact({**small, "Cu": "55"}, sid="a")], GREEN),
        ("orchard", [_exact({**small, "Cu": "100"}, ph="6.4")], GREEN),
        ("paddy_dryland_rotation", [_exact({**small, "As": "20", "Hg": "0.25"}, ph="8.0")], GREEN),
        ("forest", [_exact(small)], GREEN),  # unknown land use
        ("dryland", [_exact(nan)], GREEN),  # not a finite number: 422
        ("dryland", [_exact(small, ph="NaN")], GREEN),
        ("dryland", [_exact(small), _exact(nan, sid="e2")], GREEN),
    ]


def parcels() -> list[tuple[str, list[SampleInput], RulePack]]:
    return _hand_parcels() + _random_parcels(random.Random(20261206), 600)


def result_text(land_use: str, samples: list[SampleInput], pack: RulePack) -> str:
    """One parcel's whole result as canonical JSON (or the problem it raises)."""
    try:
        g = grade_parcel(land_use, samples, pack)
    except Problem as p:
        return json.dumps({"problem": p.code, "status": p.status, "message": p.message}, sort_keys=True)
    first = {"verdict": g.verdict, "grade": g.grade, "limiting": list(g.limiting), "qualified": g.qualified,
             "repr": repr(g)}
    d = g.to_dict()
    again = g.to_dict()  # built lazily: asking twice gives the same
    assert again == d
    return json.dumps({"first": first, "result": d}, sort_keys=True, ensure_ascii=False)


def lines() -> list[str]:
    out = []
    for k, (land_use, samples, pack) in enumerate(parcels()):
        text = result_text(land_use, samples, pack)
        verdict = json.loads(text).get("result", {}).get("verdict", "problem")
        out.append(f"{k} {verdict} {hashlib.sha256(text.encode()).hexdigest()[:24]}")
    return out


def test_results_are_the_pinned_ones():
    pinned = PINNED.read_text(encoding="utf-8").splitlines()
    got = lines()
    assert len(got) == len(pinned)
    differ = [(want, have) for want, have in zip(pinned, got, strict=True) if want != have]
    if differ:
        k = int(differ[0][1].split()[0])
        raise AssertionError(f"{len(differ)} parcels differ, first {differ[0]}: now {result_text(*parcels()[k])}")


def test_the_pinned_set_is_varied():
    verdicts = [line.split()[1] for line in PINNED.read_text(encoding="utf-8").splitlines()]
    counts = {v: verdicts.count(v) for v in set(verdicts)}
    assert set(counts) == {"qualified", "not_qualified", "indeterminate", "problem"}
    assert min(counts.values()) >= 3
    texts = [result_text(*p) for p in parcels()]
    assert sum('"disputed"' in t for t in texts) >= 2
    assert any('"grade": "still_clean"' in t for t in texts)
    assert any('"nemerow": "0.70"' in t for t in texts)


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    PINNED.write_text("\n".join(lines()) + "\n", encoding="utf-8")
    print(f"wrote {PINNED}")
