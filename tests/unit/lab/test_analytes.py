from __future__ import annotations

import pytest

from fieldsvc.lab.analytes import ANALYTES, resolve_analyte


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Cd", "Cd"),
        ("cd", "Cd"),
        ("CD", "Cd"),
        ("ＣＤ", "Cd"),
        (" Cd ", "Cd"),
        ("镉", "Cd"),
        ("总镉", "Cd"),
        ("总 镉", "Cd"),
        ("cadmium", "Cd"),
        ("Cadmium", "Cd"),
        ("Total Cadmium", "Cd"),
        ("Hg", "Hg"),
        ("汞", "Hg"),
        ("总汞", "Hg"),
        ("mercury", "Hg"),
        ("砷", "As"),
        ("arsenic", "As"),
        ("铅", "Pb"),
        ("铬", "Cr"),
        ("铜", "Cu"),
        ("镍", "Ni"),
        ("锌", "Zn"),
        ("硒", "Se"),
        ("硼", "B"),
        ("钼", "Mo"),
        ("锰", "Mn"),
        ("pH", "pH"),
        ("PH", "pH"),
        ("pH值", "pH"),
        ("ｐＨ", "pH"),
        ("有机质", "OM"),
        ("organic matter", "OM"),
        ("Organic_Matter", "OM"),
        ("SOM", "OM"),
        ("全氮", "TN"),
        ("total nitrogen", "TN"),
        ("有效磷", "AP"),
        ("Olsen-P", "AP"),
        ("olsen p", "AP"),
        ("速效磷", "AP"),
        ("速效钾", "AK"),
        ("available K", "AK"),
        ("阳离子交换量", "CEC"),
        ("cec", "CEC"),
        ("全磷", "TP"),
        ("全钾", "TK"),
        ("碱解氮", "AN"),
        ("苯并[a]芘", "BaP"),
        ("苯并(a)芘", "BaP"),
        ("六六六", "HCH"),
        ("滴滴涕总量", "DDT"),
    ],
)
def test_aliases_resolve_to_one_canonical_key(name, key):
    analyte = resolve_analyte(name)
    assert analyte is not None
    assert analyte.key == key


@pytest.mark.parametrize("name", ["", "Fe2", "cadmium oxide", "镉铅", "N", "unknown", "Cd (mg/kg)"])
def test_unknown_names_resolve_to_none(name):
    assert resolve_analyte(name) is None


@pytest.mark.parametrize(
    ("key", "unit"),
    [
        *[(k, "mg/kg") for k in "Cd Hg As Pb Cr Cu Ni Zn Se B Mo Mn".split()],
        ("pH", ""),
        ("OM", "g/kg"),
        ("TN", "g/kg"),
        ("AP", "mg/kg"),
        ("AK", "mg/kg"),
        ("CEC", "cmol(+)/kg"),
    ],
)
def test_contract_analytes_have_the_canonical_units_of_the_design(key, unit):
    assert ANALYTES[key].unit == unit


def test_every_analyte_resolves_by_its_key_and_both_names():
    for analyte in ANALYTES.values():
        for name in (analyte.key, analyte.name_zh, analyte.name_en, *analyte.aliases):
            assert resolve_analyte(name) is analyte, name
