"""The inputs fingerprint: proof that a stored grade was made from exactly these inputs.

Samples are sorted and only the analytes a pack reads are included, so the order results
arrive in, or a new result for an analyte the pack ignores, does not change it. Values keep
their written precision ("0.30" and "0.3" differ) because the explanation prints them.

The canonical text is JSON with sorted keys, no spaces and non-ASCII kept:
``{"land_use":…,"packs":[[code,version],…],"samples":[[id,code,[[analyte,qualifier,value,dl,unit],…]],…]}``,
samples ordered by id, code and then their results, results by analyte. It is written directly
(a county run fingerprints a million parcels, ``bench/grading.py``), and each measurement's
fragment is made once, by ``measurement_text``, when the measurement is made.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

_encode = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) writes for a str
_WORDS: dict[Any, str] = {None: "null"}  # analytes, qualifiers, units, land uses: few distinct, encoded once
_PACKS: dict[tuple, str] = {}  # the packs' JSON text per packs tuple
_WANTED: dict[tuple, frozenset[str]] = {}  # analyte tuples as sets


def measurement_text(analyte: str, qualifier: str, value: Any, detection_limit: Any, unit: str) -> str:
    """``[analyte, qualifier, value, detection_limit, unit]`` as JSON text (a Decimal's str needs no escaping)."""
    return (f'[{_word(analyte)},{_word(qualifier)},{"null" if value is None else chr(34) + str(value) + chr(34)},'
            f'{"null" if detection_limit is None else chr(34) + str(detection_limit) + chr(34)},{_word(unit)}]')


def canonical_inputs(packs: Iterable[tuple[str, str]], land_use: str, samples: Sequence[Any],
                     analytes: Iterable[str]) -> bytes:
    """The canonical JSON bytes that ``fingerprint`` hashes (also for debugging a mismatch)."""
    wanted = _wanted(analytes)
    if len(samples) > 1:
        samples = sorted(samples, key=_sample_key)
        if len(set(map(_sample_key, samples))) != len(samples):  # one id and code twice: order by results too
            samples = sorted(samples, key=lambda s: (*_sample_key(s), _results_key(s, wanted)))
    body = ",".join([_sample_text(s, wanted) for s in samples])
    return f'{{"land_use":{_word(land_use)},"packs":{_pack_text(packs)},"samples":[{body}]}}'.encode()


def fingerprint(packs: Iterable[tuple[str, str]], land_use: str, samples: Sequence[Any],
                analytes: Iterable[str]) -> str:
    """sha256 hex of the canonical inputs plus every (pack code, version) involved."""
    return hashlib.sha256(canonical_inputs(packs, land_use, samples, analytes)).hexdigest()


def _word(x: Any) -> str:
    text = _WORDS.get(x)
    if text is None:
        text = _encode(x) if type(x) is str else json.dumps(x, ensure_ascii=False, separators=(",", ":"))
        if len(_WORDS) < 10_000:
            _WORDS[x] = text
    return text


def _wanted(analytes: Iterable[str]) -> frozenset[str] | set[str]:
    if isinstance(analytes, set | frozenset):
        return analytes
    if type(analytes) is tuple:
        wanted = _WANTED.get(analytes)
        if wanted is None:
            wanted = frozenset(analytes)
            if len(_WANTED) < 1_000:
                _WANTED[analytes] = wanted
        return wanted
    return set(analytes)


def _pack_text(packs: Iterable[tuple[str, str]]) -> str:
    key = tuple(map(tuple, packs))
    text = _PACKS.get(key)
    if text is None:
        items = ["[" + ",".join(_word(x) for x in p) + "]" for p in sorted(list(p) for p in key)]
        text = "[" + ",".join(items) + "]"
        if len(_PACKS) < 1_000:
            _PACKS[key] = text
    return text


def _sample_key(s: Any) -> tuple[Any, Any]:
    return s.sample_id, s.sample_code


def _results_key(s: Any, wanted: frozenset[str] | set[str]) -> list:
    """The results as comparable lists (a missing value sorts as the empty string)."""
    return sorted([a, m.qualifier, "" if m.value is None else str(m.value),
                   "" if m.detection_limit is None else str(m.detection_limit), m.unit]
                  for a, m in s.measurements.items() if a in wanted)


def _sample_text(s: Any, wanted: frozenset[str] | set[str]) -> str:
    meas = s.measurements
    parts = []
    for a in sorted(meas):
        if a in wanted:
            m = meas[a]
            text = getattr(m, "text", None)
            if text is None or m.analyte != a:
                text = measurement_text(a, m.qualifier, m.value, m.detection_limit, m.unit)
            parts.append(text)
    return f"[{_encode(str(s.sample_id))},{_encode(str(s.sample_code))},[{','.join(parts)}]]"
