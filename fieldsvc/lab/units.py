"""Unit spelling and exact conversion to an analyte's canonical unit.

Every factor here is a power of ten, so conversion is a shift of the decimal
point (``Decimal.scaleb``): no float ever touches a result, and 50 µg/kg is
exactly 0.05 mg/kg. A unit we do not know, or one of the wrong dimension (g/kg
for pH, % for CEC), is refused: a silent fallback would grade on a wrong number.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal
from functools import lru_cache

from fieldsvc.errors import Problem
from fieldsvc.lab.analytes import CHARGE, MASS, NONE, Analyte


class UnitError(Problem, ValueError):
    """A unit that is unknown, or cannot express this analyte (422 for a client)."""

    def __init__(
        self, message: str, *, code: str = "unknown_unit", unit: str = "", analyte: str = ""
    ) -> None:
        super().__init__(422, code, message, unit=unit, analyte=analyte)


# Normalised spelling → (dimension, power of ten relative to the dimension's base unit).
# Bases: mg/kg for mass fractions, cmol(+)/kg for charge, nothing for pH.
_UNITS: dict[str, tuple[str, int]] = {
    "mg/kg": (MASS, 0),
    "ppm": (MASS, 0),
    "μg/g": (MASS, 0),
    "ug/g": (MASS, 0),
    "毫克/千克": (MASS, 0),
    "μg/kg": (MASS, -3),
    "ug/kg": (MASS, -3),
    "ng/g": (MASS, -3),
    "ppb": (MASS, -3),
    "微克/千克": (MASS, -3),
    "g/kg": (MASS, 3),
    "mg/g": (MASS, 3),
    "‰": (MASS, 3),
    "克/千克": (MASS, 3),
    "%": (MASS, 4),
    "cmol/kg": (CHARGE, 0),
    "cmol(+)/kg": (CHARGE, 0),
    "cmolc/kg": (CHARGE, 0),
    "meq/100g": (CHARGE, 0),
    "厘摩尔/千克": (CHARGE, 0),
    "": (NONE, 0),
    "无": (NONE, 0),
    "无量纲": (NONE, 0),
    "phunit": (NONE, 0),
    "ph": (NONE, 0),
}

_SEPARATORS = re.compile(r"[\s·⋅•∙*.]+")
_NEGATIVE_POWER = re.compile(r"^(?P<num>.+?)(?P<den>kg|100g|g)\^?-1$")


@lru_cache(maxsize=512)
def normalise_unit(unit: str) -> str:
    """One spelling per unit: ``mg·kg⁻¹``, ``MG / KG`` and ``mg／kg`` all become ``mg/kg``."""
    text = unicodedata.normalize("NFKC", unit).casefold().replace("−", "-").replace("–", "-")
    text = text.replace("µ", "μ")
    text = _SEPARATORS.sub("", text)
    match = _NEGATIVE_POWER.match(text)
    if match:
        text = f"{match['num']}/{match['den']}"
    return text


def unit_dimension(unit: str) -> tuple[str, int] | None:
    """(dimension, power of ten) for a unit spelling, or None when it is unknown."""
    return _UNITS.get(normalise_unit(unit))


@lru_cache(maxsize=1024)
def conversion_power(unit: str, analyte: Analyte) -> int:
    """Power of ten that takes a value in ``unit`` to the analyte's canonical unit."""
    found = unit_dimension(unit)
    if found is None:
        raise UnitError(f"Unknown unit {unit!r} for {analyte.key}.", unit=unit, analyte=analyte.key)
    dimension, power = found
    if dimension != analyte.dimension:
        expected = analyte.unit or "no unit"
        raise UnitError(
            f"Unit {unit!r} cannot express {analyte.key} (expected {expected}).",
            code="unit_mismatch",
            unit=unit,
            analyte=analyte.key,
        )
    canonical = _UNITS[normalise_unit(analyte.unit)][1]
    return power - canonical


def tidy(value: Decimal) -> Decimal:
    """Plain positional form without exponent or trailing fractional zeros (``0.050`` → ``0.05``)."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def convert(value: Decimal, unit: str, analyte: Analyte) -> Decimal:
    """``value`` given in ``unit``, exactly, in the analyte's canonical unit.

    :raise UnitError: the unit is unknown or of the wrong dimension.
    """
    return tidy(value.scaleb(conversion_power(unit, analyte)))
