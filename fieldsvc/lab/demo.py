"""Demo lab results: a long-layout CSV for the demo samples, as a soil lab would send it.

Plausible Chinese farmland soils (log-normal around typical background values,
shifted by land use: acid tea gardens, Cu-sprayed orchards, paddies with more
Cd and organic matter), a few exceedances of the green-food limits, censored
values written the ways labs write them (``<0.002``, ``ND`` with a detection
limit, ``0.01L``), and one QC batch: method blanks and a duplicate pair, all
passing, so the demo shows QC without holding anything. Pure: no Flask.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Iterable, Mapping
from typing import Any

from fieldsvc import csvout

HEADER = ("sample_code", "analyte", "value", "unit", "detection_limit", "method", "qc_type", "duplicate_of", "crm")

# analyte → (unit, detection limit, method, geometric mean, geometric sd, decimals)
METALS: dict[str, tuple[str, str, str, float, float, int]] = {
    "Cd": ("mg/kg", "0.01", "GB/T 17141-1997", 0.15, 1.3, 3),
    "Hg": ("mg/kg", "0.002", "GB/T 22105.1-2008", 0.06, 1.8, 3),
    "As": ("mg/kg", "0.01", "GB/T 22105.2-2008", 8.5, 1.3, 2),
    "Pb": ("mg/kg", "0.1", "GB/T 17141-1997", 28.0, 1.25, 1),
    "Cr": ("mg/kg", "4", "HJ 491-2019", 62.0, 1.2, 1),
    "Cu": ("mg/kg", "1", "HJ 491-2019", 24.0, 1.45, 1),
    "Ni": ("mg/kg", "3", "HJ 491-2019", 27.0, 1.4, 1),
    "Zn": ("mg/kg", "1", "HJ 491-2019", 74.0, 1.35, 1),
    "Se": ("mg/kg", "0.01", "NY/T 1104-2006", 0.28, 1.5, 3),
}
# Land use → multipliers on the geometric means above.
LAND_USE_SHIFT: dict[str, dict[str, float]] = {
    "paddy": {"Cd": 1.15, "Hg": 1.2},
    "paddy_dryland_rotation": {"Cd": 1.1},
    "vegetable": {"Cd": 1.2, "Zn": 1.2, "Cu": 1.2},
    "orchard": {"Cu": 1.5, "Zn": 1.1},
    "tea": {"Pb": 1.2, "Se": 1.3},
}
# Land use → (pH mean, pH sd, OM g/kg mean, AP mg/kg mean)
FERTILITY: dict[str, tuple[float, float, float, float]] = {
    "paddy": (5.9, 0.5, 30.0, 18.0),
    "paddy_dryland_rotation": (6.2, 0.5, 25.0, 20.0),
    "dryland": (6.8, 0.7, 17.0, 15.0),
    "vegetable": (6.3, 0.6, 26.0, 60.0),
    "orchard": (5.9, 0.6, 20.0, 35.0),
    "tea": (4.7, 0.4, 32.0, 12.0),
    "grassland": (7.0, 0.6, 22.0, 8.0),
}
EXCEEDANCE_SHARE = 0.02  # samples given one clearly elevated metal
TREND_NOISE = 0.4  # samples with a spatial trend: the share of the log spread left as sample-to-sample noise
TREND_EXCEEDANCE_SHARE = 0.004  # and isolated elevated samples among them (the trend has the hot spots)
CENSORED_FORMS = ("<{dl}", "ND", "{dl}L")


def _get(sample: Any, *names: str) -> Any:
    for name in names:
        value = sample.get(name) if isinstance(sample, Mapping) else getattr(sample, name, None)
        if value:
            return value
    return None


def _fmt(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def _metal(rng: random.Random, analyte: str, land_use: str, factor: float, noise: float = 1.0) -> tuple[str, str]:
    """(value cell, detection-limit cell) for one metal; censored when below the detection limit.

    ``noise`` scales the spread around the typical value (a survey whose ``trend`` carries the
    spatial part of the variation keeps less of it as noise between neighbouring samples)."""
    unit, dl, _, gm, gsd, decimals = METALS[analyte]
    shift = LAND_USE_SHIFT.get(land_use, {}).get(analyte, 1.0)
    value = math.exp(rng.gauss(math.log(gm * shift), math.log(gsd) * noise)) * factor
    # Hg and Se: now and then reported as not detected although present (digestion losses); a
    # survey's samples (``noise`` < 1, see sample_rows) come from a lab that re-ran those.
    if value < float(dl) or (analyte in ("Hg", "Se") and rng.random() < 0.03 and noise == 1.0):
        form = rng.choice(CENSORED_FORMS)
        return form.format(dl=dl), dl
    return _fmt(value, decimals), dl


def sample_rows(rng: random.Random, code: str, land_use: str,
                trend: Mapping[str, float] | None = None) -> list[tuple[str, ...]]:
    """One sample's rows. ``trend``: where the sample lies in a spatial law (analyte → multiplier
    of its typical value; ``pH`` → added to the pH), so a county's samples have spatial structure;
    such a sample keeps ``TREND_NOISE`` of the spread as noise and is rarely elevated on its own."""
    noise, share = (TREND_NOISE, TREND_EXCEEDANCE_SHARE) if trend else (1.0, EXCEEDANCE_SHARE)
    trend = trend or {}
    elevated = rng.choice(("Cd", "Cd", "Pb", "Hg", "As")) if rng.random() < share else None
    rows = []
    for analyte, (unit, _, method, *_rest) in METALS.items():
        factor = rng.uniform(3.0, 6.0) if analyte == elevated else 1.0
        value, dl = _metal(rng, analyte, land_use, factor * trend.get(analyte, 1.0), noise)
        rows.append((code, analyte, value, unit, dl, method, "", "", ""))
    ph_mean, ph_sd, om_mean, ap_mean = FERTILITY.get(land_use, FERTILITY["dryland"])
    ph = min(8.6, max(4.0, rng.gauss(ph_mean + trend.get("pH", 0.0), ph_sd * noise)))
    om = max(4.0, rng.gauss(om_mean, om_mean * 0.25))
    rows += [
        (code, "pH", _fmt(ph, 2), "", "", "NY/T 1377-2007", "", "", ""),
        (code, "OM", _fmt(om, 1), "g/kg", "", "NY/T 1121.6-2006", "", "", ""),
        (code, "TN", _fmt(om / 17 * rng.uniform(0.85, 1.15), 2), "g/kg", "", "NY/T 1121.24-2012", "", "", ""),
        (code, "AP", _fmt(max(2.0, rng.gauss(ap_mean, ap_mean * 0.4)), 1), "mg/kg", "0.5", "NY/T 1121.7-2014",
         "", "", ""),
        (code, "AK", _fmt(max(30.0, rng.gauss(130, 40)), 0), "mg/kg", "", "NY/T 889-2004", "", "", ""),
        (code, "CEC", _fmt(max(3.0, rng.gauss(13, 4)), 1), "cmol(+)/kg", "", "HJ 889-2017", "", "", ""),
    ]
    return rows


def qc_rows(rng: random.Random, original: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Two method blanks (not detected) and a duplicate of the first sample within 5 %."""
    rows = []
    for blank in ("BLK-1", "BLK-2"):
        for analyte, (unit, dl, method, *_rest) in METALS.items():
            rows.append((blank, analyte, "ND", unit, dl, method, "blank", "", ""))
    for code, analyte, value, unit, dl, method, *_ in original:
        if analyte in METALS and value.replace(".", "", 1).isdigit():
            decimals = len(value.split(".")[1]) if "." in value else 0
            again = _fmt(float(value) * rng.uniform(0.97, 1.03), decimals)
            rows.append((f"{code}-D", analyte, again, unit, dl, method, "duplicate", code, ""))
    return rows


def make_demo_results(samples: Iterable[Any], seed: int = 391) -> bytes:
    """A UTF-8 CSV (long layout) of results for ``samples`` plus one QC batch.

    ``samples``: objects or mappings with a ``code`` and, where known, ``land_use``
    (or ``land_use_observed``); ``dryland`` otherwise; and optionally a ``trend`` (see
    ``sample_rows``). Deterministic for a seed.
    """
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csvout.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    first: list[tuple[str, ...]] | None = None
    for sample in samples:
        code = _get(sample, "code")
        if not code:
            continue
        rows = sample_rows(rng, str(code), str(_get(sample, "land_use", "land_use_observed") or "dryland"),
                           _get(sample, "trend"))
        first = first or rows
        writer.writerows(rows)
    if first:
        writer.writerows(qc_rows(rng, first))
    return out.getvalue().encode("utf-8")


def make_demo_retests(samples: Iterable[tuple[str, str, Iterable[str]]], seed: int = 392) -> bytes:
    """A re-test file: ``(code, land_use, analytes)`` re-measured at background levels.

    The demo uses it the way a lab answers an exceedance in a farm park: the same bag is
    measured again, the new result supersedes the old one, and both are kept.
    """
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csvout.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for code, land_use, analytes in samples:
        for analyte in analytes:
            if analyte in METALS:
                unit, _, method, *_rest = METALS[analyte]
                value, dl = _metal(rng, analyte, land_use, 1.0)
                writer.writerow((code, analyte, value, unit, dl, method, "", "", ""))
    return out.getvalue().encode("utf-8")
