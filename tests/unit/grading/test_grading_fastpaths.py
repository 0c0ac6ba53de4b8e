"""What a county run writes equals its definition, written here the slow, obvious way (random inputs)."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from fieldsvc.grading.fingerprint import canonical_inputs, fingerprint
from fieldsvc.grading.grade import Measurement, SampleInput, classify_gb15618, gb15618_class
from fieldsvc.grading.rules import LAND_USES, load_pack

GB = load_pack("gb15618_2018")
ANALYTES = ("Cd", "Hg", "As", "Pb", "Cr", "Cu", "Ni", "Zn", "pH", "Se")
FAST = settings(max_examples=150, deadline=None)

text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)
number = st.decimals(allow_nan=False, allow_infinity=False, places=None, min_value="-1", max_value="1E+4")
odd_number = st.sampled_from([Decimal("1E-9"), Decimal("0.00000010"), Decimal("1E+3"), Decimal("-0"), Decimal("7.50")])


@st.composite
def measurement(draw, analyte: str) -> Measurement:
    qualifier = draw(st.sampled_from(["=", "=", "<", "~", '"']))
    value = draw(st.one_of(st.none(), number, odd_number))
    dl = draw(st.one_of(st.none(), number, odd_number))
    unit = draw(st.sampled_from(["mg/kg", "", "µg/kg", 'a"b\\c']))
    return Measurement(analyte, qualifier, value, dl, unit)


@st.composite
def samples(draw) -> list[SampleInput]:
    out = []
    for i in range(draw(st.integers(min_value=0, max_value=3))):
        names = draw(st.lists(st.sampled_from(ANALYTES), unique=True, max_size=len(ANALYTES)))
        sid = draw(st.one_of(st.just(f"s{i}"), text))
        out.append(SampleInput(sid, draw(text), {a: draw(measurement(a)) for a in names}))
    return out


def reference_inputs(packs, land_use, samples, analytes) -> bytes:
    """The fingerprint's canonical text by its definition: json.dumps with sorted keys of sorted lists."""
    wanted = set(analytes)
    rows = sorted([s.sample_id, s.sample_code,
                   sorted([a, m.qualifier, None if m.value is None else str(m.value),
                           None if m.detection_limit is None else str(m.detection_limit), m.unit]
                          for a, m in s.measurements.items() if a in wanted)] for s in samples)
    body = {"packs": sorted(list(p) for p in packs), "land_use": land_use, "samples": rows}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


@FAST
@given(samples(), st.sampled_from(LAND_USES + ('é"\\',)), st.lists(st.tuples(text, text), min_size=1, max_size=2),
       st.sets(st.sampled_from(ANALYTES)))
def test_fingerprint_hashes_the_defined_bytes(ss, land_use, packs, analytes):
    try:
        reference = hashlib.sha256(reference_inputs(packs, land_use, ss, analytes)).hexdigest()
    except TypeError:  # the reference cannot order these inputs at all; nothing to agree with
        return
    assert fingerprint(packs, land_use, ss, analytes) == reference
    assert fingerprint(packs, land_use, list(reversed(ss)), tuple(analytes)) == reference


def test_fingerprint_on_a_known_input():
    s = SampleInput("a", 'B"1', {"Cd": Measurement("Cd", "=", Decimal("0.30"), None, "mg/kg"),
                                 "pH": Measurement("pH", "=", Decimal("6.5"), None, ""),
                                 "Zn": Measurement("Zn", "<", None, Decimal("1E+1"), "mg/kg")})
    body = canonical_inputs([("p", "1")], "paddy", [s], ("Cd", "pH"))
    assert body == (b'{"land_use":"paddy","packs":[["p","1"]],"samples":[["a","B\\"1",'
                    b'[["Cd","=","0.30",null,"mg/kg"],["pH","=","6.5",null,""]]]]}')
    assert fingerprint([("p", "1")], "paddy", [s], ("Cd", "pH")) == hashlib.sha256(body).hexdigest()


ratio = st.decimals(min_value="0", max_value="40", places=3)


@st.composite
def gb_samples(draw) -> list[SampleInput]:
    out = []
    for i in range(draw(st.integers(min_value=1, max_value=3))):
        ms = {}
        if draw(st.booleans()) or i == 0:
            ms["pH"] = Measurement("pH", "=", draw(st.decimals(min_value="3", max_value="15", places=1)), None, "")
        for analyte, scale in (("Cd", "0.3"), ("Hg", "0.5"), ("As", "25"), ("Pb", "80"), ("Cr", "150"),
                               ("Cu", "50"), ("Ni", "60"), ("Zn", "200")):
            kind = draw(st.sampled_from(["=", "=", "<", "none", "bad"]))
            if kind == "=":
                ms[analyte] = Measurement(analyte, "=", draw(ratio) * Decimal(scale), None, "mg/kg")
            elif kind == "<":
                ms[analyte] = Measurement(analyte, "<", None, draw(ratio) * Decimal(scale) + 1, "mg/kg")
            elif kind == "bad":
                ms[analyte] = Measurement(analyte, "=", Decimal(1), None, "g/kg")
        out.append(SampleInput(f"s{i}", f"B{i}", ms))
    return out


@FAST
@given(st.sampled_from(LAND_USES), gb_samples())
def test_gb15618_class_equals_the_full_classification(land_use, ss):
    full = classify_gb15618(land_use, ss, GB)
    assert gb15618_class(land_use, ss, GB) == (full.grade, full.fingerprint)


def test_insert_rows_memo_binds_every_row_as_its_own_value():
    """A county run binds one shared explanation object for many rows; equal values share one call,
    values that only look alike (1 and 1.0, 1 and True) do not."""
    import json

    from fieldsvc.audit.services import _memo_map

    shared = {"land_use": "paddy", "strict_control": False, "excluded_samples": []}
    column = [shared, dict(shared), shared, {"a": 1}, {"a": 1.0}, [1], [True], ["x"], ["x"], shared]
    calls = []
    out = _memo_map(lambda v: calls.append(v) or json.dumps(v), column)
    assert out == [json.dumps(v) for v in column]
    assert len(calls) == 6  # shared (and its copy), {"a": 1}, {"a": 1.0}, [1], [True], ["x"]


def test_fragments_of_one_measurement_follow_the_analyte_it_is_filed_under():
    """A measurement's own fragment names its analyte; filed under another key, the key is written."""
    m = Measurement("Cd", "=", Decimal("0.30"), None, "mg/kg")
    a = SampleInput("a", "A", {"Cd": m, "Pb": m})
    for analytes in (("Cd", "Pb"), ("Pb",), ("Cd",)):
        reference = hashlib.sha256(reference_inputs([("p", "1")], "paddy", [a], analytes)).hexdigest()
        assert fingerprint([("p", "1")], "paddy", [a], analytes) == reference
