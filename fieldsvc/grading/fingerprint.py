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


def _fast_canonical(packs: Iterable[tuple[str, str]], land_use: str, samples: Sequence[Any],
                    wanted: frozenset[str] | set[str]) -> str | None:
    """The same text as ``canonical_inputs`` for the usual inputs; None when only the reference will do."""
    keyed = sorted(((s.sample_id, s.sample_code), s) for s in samples) if len(samples) > 1 else \
        [((s.sample_id, s.sample_code), s) for s in samples]
    if len(samples) > 1 and len({k for k, _ in keyed}) != len(keyed):
        return None  # two samples with one id and code: the reference breaks the tie on their results
    parts = []
    for (sid, code), s in keyed:
        if type(sid) is not str or type(code) is not str:
            return None
        meas = s.measurements
        names = sorted(a for a in meas if a in wanted)
        inner = ",".join(_fragment(a, meas[a]) for a in names)
        parts.append(f"[{_encode(sid)},{_encode(code)},[{inner}]]")
    pack_list = sorted(list(p) for p in packs)
    pack_text = ",".join(f"[{','.join(_json(x) for x in p)}]" for p in pack_list)
    return f'{{"land_use":{_json(land_use)},"packs":[{pack_text}],"samples":[{",".join(parts)}]}}'


def fingerprint(packs: Iterable[tuple[str, str]], land_use: str, samples: Sequence[Any],
                analytes: Iterable[str]) -> str:
    """sha256 hex of the canonical inputs plus every (pack code, version) involved."""
    packs = list(packs)
    wanted = analytes if isinstance(analytes, (set, frozenset)) else set(analytes)
    text = _fast_canonical(packs, land_use, samples, wanted)
    body = text.encode() if text is not None else canonical_inputs(packs, land_use, samples, wanted)
    return hashlib.sha256(body).hexdigest()
