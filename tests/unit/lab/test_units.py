from __future__ import annotations

from decimal import Decimal

import pytest

from fieldsvc.errors import Problem
from fieldsvc.lab.analytes import ANALYTES
from fieldsvc.lab.units import UnitError, convert, normalise_unit

D = Decimal
CD, OM, PH, CEC = ANALYTES["Cd"], ANALYTES["OM"], ANALYTES["pH"], ANALYTES["CEC"]


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        ("0.05", "mg/kg", "0.05"),
        ("0.05", "ppm", "0.05"),
        ("0.05", "PPM", "0.05"),
        ("50", "µg/kg", "0.05"),  # U+00B5 micro sign
        ("50", "μg/kg", "0.05"),  # U+03BC Greek mu
        ("50", "ug/kg", "0.05"),
        ("50", "ppb", "0.05"),
        ("50", "ng/g", "0.05"),
        ("0.05", "μg/g", "0.05"),
        ("0.3", "g/kg", "300"),
        ("0.0003", "g/kg", "0.3"),
        ("0.5", "%", "5000"),
        ("0.00003", "%", "0.3"),
        ("0.3", "mg kg-1", "0.3"),
        ("0.3", "mg·kg⁻¹", "0.3"),
        ("0.3", "mg.kg-1", "0.3"),
        ("0.3", "mg kg^-1", "0.3"),
        ("0.3", "mg／kg", "0.3"),
        ("0.3", " MG / KG ", "0.3"),
        ("0.3", "毫克/千克", "0.3"),
        ("300", "μg kg-1", "0.3"),
    ],
)
def test_mg_per_kg_analytes_convert_exactly(value, unit, expected):
    result = convert(D(value), unit, CD)
    assert result == D(expected)
    assert str(result) == expected  # no float artefacts, no exponent, no stray zeros


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        ("25.3", "g/kg", "25.3"),
        ("2.53", "%", "25.3"),
        ("25300", "mg/kg", "25.3"),
        ("1.5", "g kg-1", "1.5"),
    ],
)
def test_g_per_kg_analytes_convert_exactly(value, unit, expected):
    assert str(convert(D(value), unit, OM)) == expected


@pytest.mark.parametrize(
    "unit", ["cmol/kg", "cmol(+)/kg", "cmol（＋）/kg", "meq/100g", "meq/100 g", "cmol kg-1"]
)
def test_cec_units_are_all_the_same(unit):
    assert convert(D("12.5"), unit, CEC) == D("12.5")


@pytest.mark.parametrize("unit", ["", "无", "无量纲", "pH unit", "  "])
def test_ph_accepts_the_dimensionless_spellings(unit):
    assert convert(D("6.5"), unit, PH) == D("6.5")


@pytest.mark.parametrize(
    ("unit", "analyte", "code"),
    [
        ("furlongs", CD, "unknown_unit"),
        ("mg/l", CD, "unknown_unit"),
        ("kg/mg", CD, "unknown_unit"),
        ("g/kg", PH, "unit_mismatch"),
        ("", CD, "unit_mismatch"),
        ("无量纲", CD, "unit_mismatch"),
        ("%", CEC, "unit_mismatch"),
        ("cmol/kg", CD, "unit_mismatch"),
        ("meq/100g", OM, "unit_mismatch"),
    ],
)
def test_unknown_or_wrong_dimension_unit_is_a_unit_error(unit, analyte, code):
    with pytest.raises(UnitError) as caught:
        convert(D(1), unit, analyte)
    error = caught.value
    assert isinstance(error, Problem) and isinstance(error, ValueError)
    assert error.status == 422 and error.code == code
    assert analyte.key in error.message
    assert error.details == {"unit": unit, "analyte": analyte.key}


@pytest.mark.parametrize(
    ("spelling", "normal"),
    [
        ("mg·kg⁻¹", "mg/kg"),
        ("µg/kg", "μg/kg"),
        ("MG／KG", "mg/kg"),
        ("meq 100g-1", "meq/100g"),
        ("mg g-1", "mg/g"),
    ],
)
def test_unit_spellings_normalise_to_one_form(spelling, normal):
    assert normalise_unit(spelling) == normal
