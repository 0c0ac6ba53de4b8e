"""A county run stores each estimated parcel's explanation as JSON text written straight from the
arrays (``CountyAssessment.texts``, the one writer; ``estimated.stored`` wraps it and ``assess``
parses it back). These tests check that text against what it claims, computed here another way:
the neighbours' distances from the coordinates, their eligibility (analyte held, land-use group),
each analyte's estimate from the per-target path (``estimation.estimate``), the verdict rule, the
precaution and the fingerprint; on counties where analytes use different samples (several
neighbour sets), an analyte has too few neighbours, and a neighbour exceeds its limit."""

from __future__ import annotations

import hashlib
import math
import random

import orjson
import pytest

from fieldsvc.grading import estimated, spatial
from fieldsvc.grading import estimation as es
from fieldsvc.grading.basis import stored_rows
from fieldsvc.grading.rules import load_pack

ANALYTES = ("Cd", "Hg", "As", "Pb", "Cr", "Cu")
TOP_KEYS = ["basis", "land_use", "method", "analytes", "ph", "ph_neighbour_set", "neighbour_sets", "parameters",
            "models_digest", "strict_control"]
DIGEST = "0123456789abcdef"


def _county(seed: int) -> tuple[list[es.Sample], list[es.Target]]:
    rng = random.Random(seed)
    uses = ("paddy", "dryland", "vegetable", "orchard", "tea")
    samples = []
    for i in range(60):
        values = {a: rng.lognormvariate(0, 0.6) * base for a, base in
                  zip(ANALYTES, (0.2, 0.1, 10.0, 30.0, 60.0, 25.0), strict=True) if rng.random() > 0.2}
        if rng.random() > 0.15:
            values["pH"] = rng.uniform(5.0, 8.0)
        if i % 7 == 0:
            values["Cd"] = 2.0  # over every limit: its neighbours' rows name it
        samples.append(es.Sample(f"S{i:03d}", f"P{i:03d}", rng.choice(uses), rng.uniform(0, 6000),
                                 rng.uniform(0, 6000), values))
    targets = [es.Target(f"P{i:03d}", rng.uniform(-3000, 9000), rng.uniform(-3000, 9000), rng.choice(uses))
               for i in range(60, 400)]
    targets += [es.Target(s.parcel, s.x, s.y, s.land_use) for s in samples]
    return samples, targets


def _obs(samples, analyte, limit):
    """An analyte's observations as a run sees them (a sample exceeds at its own pH)."""
    out = []
    for s in samples:
        if analyte not in s.values:
            continue
        ex = analyte != "pH" and "pH" in s.values and \
            s.values[analyte] > limit(analyte, s.land_use, s.values["pH"], s.values["pH"])[0]
        out.append(es.Obs(s.code, s.x, s.y, s.land_use, float(s.values[analyte]), ex))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_stored_text_says_what_the_geometry_limits_and_estimates_say(seed):
    pack = load_pack("green_food_soil")
    params, limit = pack.estimation, spatial.limit_fn(pack)
    samples, targets = _county(seed)
    by_code = {s.code: s for s in samples}
    target = {t.code: t for t in targets}
    county = es.assess_arrays(samples, targets, list(pack.data["analytes"]), limit, params)
    made, not_assessed = estimated.stored(county, pack, DIGEST)
    parsed = county.assessments()
    obs = {a: _obs(samples, a, limit) for a in pack.data["analytes"]}
    kinds: set[str] = set()
    checked_estimates = 0
    for code, got in made.items():
        text = got.explanation.text
        assert orjson.dumps(orjson.loads(text)).decode() == text  # orjson's compact form
        ex = orjson.loads(text)
        assert list(ex) == TOP_KEYS and ex["basis"] == es.ESTIMATED and ex["models_digest"] == DIGEST
        assert got.fingerprint == hashlib.sha256(f"{pack.code}\n{pack.version}\n{text}".encode()).hexdigest()
        assert got.explanation.full() == ex and dict(got.explanation) == {"basis": es.ESTIMATED}
        t = target[code]
        assert ex["land_use"] == t.land_use
        sets = ex["neighbour_sets"]
        assert len({orjson.dumps(s) for s in sets}) == len(sets)  # distinct sets, each once
        for nb in sets:
            metres = [round(math.hypot(by_code[c].x - t.x, by_code[c].y - t.y)) for c in nb["samples"]]
            assert nb["distance_m"] == metres and metres == sorted(metres), code
            assert all(m <= params.search_radius_m for m in metres)
            assert {params.group(by_code[c].land_use) for c in nb["samples"]} <= {params.group(t.land_use)}
        assert all(c in by_code and "pH" in by_code[c].values for c in sets[ex["ph_neighbour_set"]]["samples"])
        assert all(isinstance(r, list) and len(r) in (11, 12) for r in ex["analytes"])  # compact rows
        rows = {r["analyte"]: r for r in stored_rows(ex)}
        assert list(rows) == [a for a in pack.data["analytes"] if a != "pH"]
        for analyte, r in rows.items():
            nb = sets[r["neighbour_set"]]
            assert all(analyte in by_code[c].values for c in nb["samples"]), (code, analyte)
            hot = r.get("exceeding", [])
            assert set(hot) <= set(nb["samples"])
            for c in hot:  # a neighbour named as exceeding is over its own limit at its own pH
                s = by_code[c]
                assert s.values[analyte] > limit(analyte, s.land_use, s.values["pH"], s.values["pH"])[0]
            kinds.add(r["reason"])
            if r["basis"] != es.ESTIMATED:
                assert r["verdict"] == es.NOT_ASSESSED
                continue
            assert (r["verdict"], r["reason"]) in {
                (es.QUALIFIED, "upper_bound_within_limit"), (es.NOT_QUALIFIED, "lower_bound_above_limit"),
                (es.NEEDS_SAMPLING, "neighbour_exceeds_limit"), (es.NEEDS_SAMPLING, "interval_spans_limit")}
            if r["verdict"] == es.QUALIFIED:
                assert r["upper"] <= r["limit"] and not hot
            if r["verdict"] == es.NOT_QUALIFIED:
                assert r["lower"] > r["limit"]
            assert (r["reason"] == "neighbour_exceeds_limit") == (r["verdict"] == es.NEEDS_SAMPLING and bool(hot))
            assert r["lower"] <= r["value"] <= r["upper"] and r["sigma"] >= 0
            if checked_estimates < 60:  # the per-target path gives the same estimate and neighbours
                model = county.models[analyte]
                one = es.estimate(model, obs[analyte], [es.Target(code, t.x, t.y, t.land_use)], params)[code]
                assert [n.code for n in one.neighbours] == nb["samples"]
                for key in ("value", "sigma", "lower", "upper"):
                    assert r[key] == pytest.approx(es._sig(getattr(one, key)), rel=2e-3), (code, analyte, key)
                checked_estimates += 1
        verdicts = [r["verdict"] for r in rows.values()]
        assert got.verdict == es.combine(verdicts) and got.qualified == (got.verdict == es.QUALIFIED)
        assert got.limiting == sorted(a for a, r in rows.items() if r["verdict"] != es.QUALIFIED)
        # ``assess`` gives the same rows, parsed, with each set in place of its index
        a = parsed[code]
        assert (a.basis, a.verdict) == (es.ESTIMATED, got.verdict)
        for analyte, r in rows.items():
            want = {k: v for k, v in r.items() if k not in ("analyte", "neighbour_set")}
            assert a.analytes[analyte] == want | {"neighbours": sets[r["neighbour_set"]]}
        assert a.ph_neighbours == sets[ex["ph_neighbour_set"]]
        kinds.add(f"sets:{len(sets)}")
    assert checked_estimates >= 60 and made
    for code in not_assessed:
        assert parsed[code].basis == parsed[code].verdict == es.NOT_ASSESSED
    assert set(made) | set(not_assessed) == {c for c, a in parsed.items() if a.basis != es.MEASURED}
    assert {"too_few_neighbours", "neighbour_exceeds_limit"} <= kinds
    assert any(k.startswith("sets:") and k != "sets:1" for k in kinds)  # several neighbour sets


def test_the_verdict_rule_one_analyte_at_a_time():
    """``judge``: within only under the strictest limit and with no hot neighbour; beyond only
    over the loosest; a pH interval spanning two bands keeps an estimate between them open."""
    import numpy as np

    def one(lower, upper, hot, strict, loose):
        v, why = es.judge(np.array([lower]), np.array([upper]), np.array([hot]), np.array([strict]),
                          np.array([loose]))
        return es.ROW_VERDICTS[int(v[0])], es.ROW_REASONS[int(why[0])]

    assert one(0.35, 0.45, False, 0.6, 0.6) == (es.QUALIFIED, "upper_bound_within_limit")
    assert one(0.35, 0.45, True, 0.6, 0.6) == (es.NEEDS_SAMPLING, "neighbour_exceeds_limit")
    assert one(0.35, 0.45, False, 0.3, 0.6) == (es.NEEDS_SAMPLING, "interval_spans_limit")  # pH spans 6.5
    assert one(0.35, 0.45, False, 0.3, 0.3) == (es.NOT_QUALIFIED, "lower_bound_above_limit")
    assert one(0.35, 0.45, True, 0.2, 0.3) == (es.NOT_QUALIFIED, "lower_bound_above_limit")
    assert one(0.2, 0.3, False, 0.3, 0.6) == (es.QUALIFIED, "upper_bound_within_limit")  # bound on the limit
