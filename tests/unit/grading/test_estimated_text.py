"""A county run stores each estimated parcel's explanation straight from the arrays
(``estimated.stored``): the text and fingerprint must be those of the same explanation built as
dicts from ``assess``'s rows and encoded by orjson (``_as_dicts``, the stored form's definition,
which the run made before), byte for byte, also where analytes use different samples (several
neighbour sets), an analyte has too few neighbours, or a neighbour exceeds its limit."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from typing import Any

import orjson
import pytest

from fieldsvc.grading import estimated, spatial
from fieldsvc.grading import estimation as es
from fieldsvc.grading.rules import RulePack, load_pack

ANALYTES = ("Cd", "Hg", "As", "Pb", "Cr", "Cu")


def _as_dicts(a: es.Assessment, pack: RulePack, land_use: str, digest: str) -> tuple[dict, str, str, list]:
    """(explanation, its text, fingerprint, limiting) of an estimated parcel as the run made
    them as dicts: each analyte's row of ``assess`` with its neighbours replaced by the index of
    its set (sets compared by value, numbered in order of first use: analytes, then pH)."""
    sets: list[Mapping[str, list]] = []

    def ref(nb: Mapping[str, list]) -> int:
        for j, known in enumerate(sets):
            if known is nb or known == nb:
                return j
        sets.append(nb)
        return len(sets) - 1

    rows = []
    methods = set()
    for k, v in a.analytes.items():
        row: dict[str, Any] = {"analyte": k}
        for key, val in v.items():
            if key == "neighbours":
                row["neighbour_set"] = ref(val)
            else:
                row[key] = val
        if v.get("method"):
            methods.add(v["method"])
        rows.append(row)
    ordered = sorted(methods)
    explanation = dict(
        basis=a.basis, land_use=land_use, method=ordered[0] if len(ordered) == 1 else ordered, analytes=rows,
        ph_neighbour_set=ref(a.ph_neighbours) if a.ph_neighbours is not None else None, neighbour_sets=sets,
        parameters={"search_radius_m": pack.estimation.search_radius_m,
                    "min_neighbours": pack.estimation.min_neighbours, "z": pack.estimation.z},
        models_digest=digest, strict_control=False)
    text = orjson.dumps(explanation).decode()
    fp = hashlib.sha256(f"{pack.code}\n{pack.version}\n{text}".encode()).hexdigest()
    limiting = sorted(k for k, v in a.analytes.items() if v.get("verdict") != "qualified")
    return explanation, text, fp, limiting


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
def test_stored_text_is_the_dict_form_encoded(seed):
    pack = load_pack("green_food_soil")
    samples, targets = _county(seed)
    county = es.assess_arrays(samples, targets, list(pack.data["analytes"]), spatial.limit_fn(pack), pack.estimation)
    land_use = {t.code: t.land_use for t in targets}
    made, not_assessed = estimated.stored(county, pack, "0123456789abcdef")
    kinds = set()
    n = 0
    for code, a in county.assessments().items():
        if a.basis == es.ESTIMATED:
            explanation, text, fp, limiting = _as_dicts(a, pack, land_use[code], "0123456789abcdef")
            got = made[code]
            assert got.explanation.text == text, code
            assert (got.fingerprint, got.verdict, got.qualified, got.limiting) == \
                (fp, a.verdict, a.verdict == "qualified", limiting), code
            assert got.explanation.full() == explanation
            assert dict(got.explanation) == {"basis": es.ESTIMATED}
            kinds |= {r.get("reason") for r in a.analytes.values()}
            kinds.add(f"sets:{len(orjson.loads(got.explanation.text)['neighbour_sets'])}")
            n += 1
        elif a.basis == es.NOT_ASSESSED:
            assert code in not_assessed
    assert n == len(made) > 0
    assert {"too_few_neighbours", "neighbour_exceeds_limit"} <= kinds  # (pH not assessed: no analyte is estimated)
    assert any(k.startswith("sets:") and k != "sets:1" for k in kinds)  # several neighbour sets
