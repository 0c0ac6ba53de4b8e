"""A county run stores each estimated parcel's explanation straight from the arrays
(``estimated.stored``): the text and fingerprint must be ``to_evaluated``'s, byte for byte, also
where analytes use different samples (several neighbour sets), an
analyte has too few neighbours, or a neighbour exceeds its limit."""

from __future__ import annotations

import random

import orjson
import pytest

from fieldsvc.grading import estimated, spatial
from fieldsvc.grading import estimation as es
from fieldsvc.grading.rules import load_pack

ANALYTES = ("Cd", "Hg", "As", "Pb", "Cr", "Cu")


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


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_stored_text_is_to_evaluated_text(seed):
    pack = load_pack("green_food_soil")
    samples, targets = _county(seed)
    county = es.assess_arrays(samples, targets, list(pack.data["analytes"]), spatial.limit_fn(pack), pack.estimation)
    land_use = {t.code: t.land_use for t in targets}
    made, not_assessed = estimated.stored(county, pack, "0123456789abcdef")
    kinds = set()
    n = 0
    for code, a in county.assessments().items():
        if a.basis == es.ESTIMATED:
            want = estimated.to_evaluated(a, pack, land_use[code], "0123456789abcdef")
            got = made[code]
            assert got.explanation.text == want.explanation.text, code
            assert (got.fingerprint, got.verdict, got.qualified, got.limiting) == \
                (want.fingerprint, want.verdict, want.qualified, want.limiting), code
            assert got.explanation.full() == dict(want.explanation)
            kinds |= {r.get("reason") for r in a.analytes.values()}
            kinds.add(f"sets:{len(orjson.loads(got.explanation.text)['neighbour_sets'])}")
            n += 1
        elif a.basis == es.NOT_ASSESSED:
            assert code in not_assessed
    assert n == len(made) > 0
    assert {"too_few_neighbours", "neighbour_exceeds_limit"} <= kinds  # (pH not assessed: no analyte is estimated)
    assert any(k.startswith("sets:") and k != "sets:1" for k in kinds)  # several neighbour sets
