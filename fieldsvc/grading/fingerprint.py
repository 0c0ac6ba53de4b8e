"""The inputs fingerprint: proof that a stored grade was made from exactly these inputs.

Samples are sorted and only the analytes a pack reads are included, so the order results
arrive in, or a new result for an analyte the pack ignores, does not change it. Values keep
their written precision ("0.30" and "0.3" differ) because the explanation prints them.

``fingerprint`` writes the same bytes as ``canonical_inputs`` (the reference: ``json.dumps``
with sorted keys) without building nested lists or calling the encoder per value, so a county
run of a million parcels pays little for it. A test holds the two byte-identical on random inputs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

_encode = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) writes for a str


def _text(d: Decimal | None) -> str | None:
    return None if d is None else str(d)


def canonical_inputs(packs: Iterable[tuple[str, str]], land_use: str, samples: Sequence[Any],
                     analytes: Iterable[str]) -> bytes:
    """The canonical JSON bytes that are hashed (exposed for debugging a mismatch)."""
    wanted = set(analytes)
    rows = sorted(
        [
            s.sample_id,
            s.sample_code,
            sorted(
                [a, m.qualifier, _text(m.value), _text(m.detection_limit), m.unit]
                for a, m in s.measurements.items()
                if a in wanted
            ),
        ]
        for s in samples
    )
    body = {"packs": sorted(list(p) for p in packs), "land_use": land_use, "samples": rows}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def _json(x: Any) -> str:
    if type(x) is str:
        return _encode(x)
    return "null" if x is None else json.dumps(x, ensure_ascii=False, separators=(",", ":"))


_WORDS: dict[Any, str] = {None: "null"}  # analytes, qualifiers, units: few distinct, encoded once


def _word(x: Any) -> str:
    text = _WORDS.get(x)
    if text is None:
        text = _json(x)
        if len(_WORDS) < 10_000:
            _WORDS[x] = text
    return text


def _fragment(a: str, m: Any) -> str:
    """``[analyte, qualifier, value, detection_limit, unit]`` as JSON text (a Decimal's str needs no escaping)."""
    v, dl = m.value, m.detection_limit
    return (f'[{_word(a)},{_word(m.qualifier)},{"null" if v is None else chr(34) + str(v) + chr(34)},'
            f'{"null" if dl is None else chr(34) + str(dl) + chr(34)},{_word(m.unit)}]')


_FROZEN: set[type] = set()  # measurement classes whose instances never change (``immutable``)
_FRAGMENTS: dict[int, tuple[Any, str, str]] = {}  # id(measurement) → (measurement, analyte, fragment)
_FRAGMENTS_MAX = 200_000


def immutable(cls: type) -> type:
    """Class decorator: instances never change, so each one's JSON fragment is written once and kept.

    A county run interns one measurement object per distinct stored result, so most fragments of a
    run are looked up, not written. The cache holds the object itself, so its id is not reused.
    """
    _FROZEN.add(cls)
    return cls


def _fragment_of(a: str, m: Any) -> str:
    got = _FRAGMENTS.get(id(m))
    if got is not None and got[0] is m and got[1] == a:
        return got[2]
    text = _fragment(a, m)
    if type(m) in _FROZEN and type(a) is str:
        if len(_FRAGMENTS) >= _FRAGMENTS_MAX:
            _FRAGMENTS.clear()
        _FRAGMENTS[id(m)] = (m, a, text)
    return text


_PACKS: dict[tuple, str] = {}  # the packs' JSON text per packs tuple
_WANTED: dict[tuple, frozenset[str]] = {}  # analyte tuples as sets


def _pack_text(packs: list) -> str:
    key = tuple(map(tuple, packs))
    text = _PACKS.get(key)
    if text is None:
        items = ["[" + ",".join(_json(x) for x in p) + "]" for p in sorted(list(p) for p in packs)]
        text = "[" + ",".join(items) + "]"
        if len(_PACKS) < 1_000:
            _PACKS[key] = text
    return text


def _sample_key(s: Any) -> tuple[Any, Any]:
    return s.sample_id, s.sample_code


def _sample_text(s: Any, wanted: frozenset[str] | set[str]) -> str | None:
    sid, code, meas = s.sample_id, s.sample_code, s.measurements
    if type(sid) is not str or type(code) is not str:
        return None
    parts = []
    for a in sorted(meas):
        if a in wanted:
            m = meas[a]
            got = _FRAGMENTS.get(id(m))  # _fragment_of, inlined: a run asks this 7 million times
            parts.append(got[2] if got is not None and got[0] is m and got[1] == a else _fragment_of(a, m))
    inner = ",".join(parts)
    return f"[{_encode(sid)},{_encode(code)},[{inner}]]"


def _fast_canonical(packs: Iterable[tuple[str, str]], land_use: str, samples: Sequence[Any],
                    wanted: frozenset[str] | set[str]) -> str | None:
    """The same text as ``canonical_inputs`` for the usual inputs; None when only the reference will do."""
    if len(samples) == 1:
        body = _sample_text(samples[0], wanted)
        if body is None:
            return None
    else:
        ordered = sorted(samples, key=_sample_key)
        if len(set(map(_sample_key, ordered))) != len(ordered):
            return None  # two samples with one id and code: the reference breaks the tie on their results
        parts = []
        for s in ordered:
            text = _sample_text(s, wanted)
            if text is None:
                return None
            parts.append(text)
        body = ",".join(parts)
    return f'{{"land_use":{_word(land_use)},"packs":{_pack_text(packs)},"samples":[{body}]}}'


def fingerprint(packs: Iterable[tuple[str, str]], land_use: str, samples: Sequence[Any],
                analytes: Iterable[str]) -> str:
    """sha256 hex of the canonical inputs plus every (pack code, version) involved."""
    packs = list(packs)
    if isinstance(analytes, (set, frozenset)):
        wanted = analytes
    elif type(analytes) is tuple:
        wanted = _WANTED.get(analytes)
        if wanted is None:
            wanted = frozenset(analytes)
            if len(_WANTED) < 1_000:
                _WANTED[analytes] = wanted
    else:
        wanted = set(analytes)
    text = _fast_canonical(packs, land_use, samples, wanted)
    body = text.encode() if text is not None else canonical_inputs(packs, land_use, samples, wanted)
    return hashlib.sha256(body).hexdigest()
