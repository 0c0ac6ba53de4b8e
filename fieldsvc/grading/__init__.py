"""Grading: rule packs as data, a pure engine for parcels, and roll-ups for areas.

Nothing here imports Flask or the database; services pass plain values in and store what
comes out (verdict, grade, explanation, fingerprint).
"""

from __future__ import annotations

from fieldsvc.grading.grade import (
    ClassGrade,
    Measurement,
    ParcelGrade,
    SampleInput,
    classify_fertility,
    classify_gb15618,
    classify_micronutrients,
    classify_se,
    evaluate,
    grade_parcel,
)
from fieldsvc.grading.rollup import AreaGrade, ParcelOutcome, RollupSums, grade_from_sums, rollup
from fieldsvc.grading.rules import DEFAULT_PACK, RulePack, RulePackError, list_packs, load_pack, validate_pack

__all__ = [
    "DEFAULT_PACK", "AreaGrade", "ClassGrade", "Measurement", "ParcelGrade", "ParcelOutcome", "RollupSums",
    "RulePack", "RulePackError", "SampleInput", "classify_fertility", "classify_gb15618",
    "classify_micronutrients", "classify_se", "evaluate", "grade_from_sums", "grade_parcel", "list_packs",
    "load_pack", "rollup", "validate_pack",
]
