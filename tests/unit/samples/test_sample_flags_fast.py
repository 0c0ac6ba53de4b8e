"""``location_flags``: the plain-number fast path gives exactly what the Decimal path gives."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from fieldsvc.samples.validation import SampleRules, location_flags

COORDS = [0, 0.0, -0.0, 28.18, 1e-300, -90, 180]
ACCURACIES = [None, 0, 4.5, 30, 30.0, 30.000000000000004, 29.999999999999996, 31, 1e9]
DISTANCES = [None, 0, 0.0]


def _decimal(value):
    return None if value is None else Decimal(repr(value))


@pytest.mark.parametrize("rules", [SampleRules(), SampleRules(low_accuracy_m=4.5, location_buffer_m=0)])
def test_fast_path_matches_decimal_path(rules):
    for lat, lon, acc, dist in itertools.product(COORDS, COORDS, ACCURACIES, DISTANCES):
        fast = location_flags(lat, lon, acc, dist, rules)
        exact = location_flags(_decimal(lat), _decimal(lon), _decimal(acc), _decimal(dist), rules)
        assert fast == exact, (lat, lon, acc, dist)


@pytest.mark.parametrize(("acc", "dist", "expected"), [
    (4.5, 24.5, []),  # exactly accuracy + buffer: no mismatch (Decimal sum)
    (4.5, 24.500000000000004, ["location_mismatch"]),
    (4.5, float("nan"), None),  # not plain: the Decimal path decides (and refuses NaN)
    (-1, 0, []),  # out-of-range accuracy takes the exact path (-1 m is not "low")
])
def test_outside_points_and_odd_values_take_the_exact_path(acc, dist, expected):
    if expected is None:
        with pytest.raises(Exception):  # noqa: B017, PT011 - decimal.InvalidOperation, as before
            location_flags(28.0, 115.0, acc, dist, SampleRules())
        return
    assert location_flags(28.0, 115.0, acc, dist, SampleRules()) == expected
