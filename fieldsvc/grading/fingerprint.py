"""The inputs fingerprint: proof that a stored grade was made from exactly these inputs.

Samples are sorted and only the analytes a pack reads are included, so the order results
arrive in, or a new result for an analyte the pack ignores, does not change it. Values keep
their written precision ("0.30" and "0.3" differ) because the explanation prints them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any


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


def fingerprint(packs: Iterable[tuple[str, str]], land_use: str, samples: Sequence[Any],
                analytes: Iterable[str]) -> str:
    """sha256 hex of the canonical inputs plus every (pack code, version) involved."""
    return hashlib.sha256(canonical_inputs(packs, land_use, samples, analytes)).hexdigest()
