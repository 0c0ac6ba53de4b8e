"""The analytes fieldsvc knows, each with one canonical key and unit.

Labs name the same thing many ways (``Cd``, ``镉``, ``总镉``, ``Cadmium``); every
import, grade and certificate speaks only the canonical key, so aliases are
resolved once, here, and an unknown name is an error rather than a guess.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

MASS = "mass_fraction"
CHARGE = "charge_per_mass"
NONE = "dimensionless"


@dataclass(frozen=True)
class Analyte:
    key: str
    unit: str
    dimension: str
    name_zh: str
    name_en: str
    aliases: tuple[str, ...] = ()


def _metal(key: str, zh: str, en: str, *extra: str) -> Analyte:
    """Total element content in mg/kg; labs add 总 / total to the same names."""
    return Analyte(key, "mg/kg", MASS, zh, en, (f"总{zh}", f"total {en}", f"{zh}含量", *extra))


ANALYTES: dict[str, Analyte] = {
    a.key: a
    for a in (
        _metal("Cd", "镉", "cadmium"),
        _metal("Hg", "汞", "mercury"),
        _metal("As", "砷", "arsenic"),
        _metal("Pb", "铅", "lead"),
        _metal("Cr", "铬", "chromium"),
        _metal("Cu", "铜", "copper"),
        _metal("Ni", "镍", "nickel"),
        _metal("Zn", "锌", "zinc"),
        _metal("Se", "硒", "selenium"),
        _metal("B", "硼", "boron"),
        _metal("Mo", "钼", "molybdenum"),
        _metal("Mn", "锰", "manganese"),
        Analyte("pH", "", NONE, "pH", "pH", ("pH值", "酸碱度", "土壤pH", "soil pH")),
        Analyte("OM", "g/kg", MASS, "有机质", "organic matter", ("SOM", "土壤有机质", "soil organic matter")),
        Analyte("TN", "g/kg", MASS, "全氮", "total nitrogen", ("总氮",)),
        Analyte("TP", "g/kg", MASS, "全磷", "total phosphorus", ("总磷",)),
        Analyte("TK", "g/kg", MASS, "全钾", "total potassium", ("总钾",)),
        Analyte(
            "AN",
            "mg/kg",
            MASS,
            "碱解氮",
            "alkali-hydrolyzable nitrogen",
            ("水解性氮", "碱解性氮", "alkali-hydrolysable nitrogen", "available nitrogen", "available N"),
        ),
        Analyte(
            "AP",
            "mg/kg",
            MASS,
            "有效磷",
            "available phosphorus",
            ("Olsen-P", "Olsen P", "速效磷", "available P"),
        ),
        Analyte("AK", "mg/kg", MASS, "速效钾", "available potassium", ("available K", "有效钾")),
        Analyte("CEC", "cmol(+)/kg", CHARGE, "阳离子交换量", "cation exchange capacity", ()),
        # GB 15618-2018 table 2: the other screened items, all in mg/kg.
        Analyte("HCH", "mg/kg", MASS, "六六六总量", "total HCH", ("六六六", "HCHs", "BHC")),
        Analyte("DDT", "mg/kg", MASS, "滴滴涕总量", "total DDT", ("滴滴涕", "DDTs")),
        Analyte("BaP", "mg/kg", MASS, "苯并[a]芘", "benzo[a]pyrene", ("苯并(a)芘", "苯并芘", "B[a]P")),
    )
}

_STRIP = re.compile(r"[\s_\-]+")


@lru_cache(maxsize=4096)
def alias_key(name: str) -> str:
    """Fold a name for matching: NFKC (full-width → ASCII), case, spaces, _ and -."""
    return _STRIP.sub("", unicodedata.normalize("NFKC", name).casefold())


def _build_index() -> dict[str, Analyte]:
    index: dict[str, Analyte] = {}
    for analyte in ANALYTES.values():
        for name in (analyte.key, analyte.name_zh, analyte.name_en, *analyte.aliases):
            key = alias_key(name)
            other = index.setdefault(key, analyte)
            if other is not analyte:  # pragma: no cover - guards the table above
                raise RuntimeError(f"alias {name!r} is claimed by {other.key} and {analyte.key}")
    return index


_INDEX = _build_index()


@lru_cache(maxsize=1024)
def resolve_analyte(name: str) -> Analyte | None:
    """The analyte a lab's name refers to, or None when it is not one we know."""
    return _INDEX.get(alias_key(name)) if name else None
