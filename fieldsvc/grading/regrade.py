"""Incremental re-grading in the current transaction (after a lab approval, a sample edit, a
parcel change, a conflict resolution); areas follow incrementally. Flush, never commit."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select

from ..auth.principal import SYSTEM, Actor
from ..extensions import db
from ..places.models import Parcel
from ..samples.models import Sample
from . import estimated
from .evaluation import GB_PACK
from .gradepass import _apply_deltas, _finish, _grade_chunk, _Pass
from .inputs import CHUNK
from .models import RollupSum
from .pack_admin import resolve_pack
from .rules import DEFAULT_PACK, RulePack, load_pack
from .sums import _lock_sums, county_has_state


def regrade_parcels(parcel_codes: Iterable[str], pack: str | RulePack | None = None,
                    actor: Actor = SYSTEM) -> list[dict[str, Any]]:
    """Re-grade these parcels in the current transaction; idempotent; areas follow incrementally.

    ``pack`` None: the default pack and every pack with maintained state in the parcels' counties.
    Returns the grade changes (parcels and areas), empty when nothing changed.
    """
    codes = sorted(set(parcel_codes))
    if not codes:
        return []
    if pack is None:
        packs = {DEFAULT_PACK} | set(db.session.scalars(select(RollupSum.rule_pack).where(
            RollupSum.subject_type == "county", RollupSum.subject_code.in_(_counties_of(codes)))))
        chosen = [load_pack(c) for c in sorted(packs)]
    else:
        chosen = [pack if isinstance(pack, RulePack) else resolve_pack(pack)]
    changes: list[dict[str, Any]] = []
    for rp in chosen:
        p = _Pass(rp, actor, None, set(), gb_pack=load_pack(GB_PACK))
        _lock_counties(p, codes)
        near, p.estimates = estimated.around(codes, rp)  # parcels whose neighbour sets name or take them follow
        todo = sorted(set(codes) | near)
        for start in range(0, len(todo), CHUNK):
            _grade_chunk(p, todo[start:start + CHUNK])
        _finish(p, _apply_deltas(p))
        changes.extend(c.to_dict() | {"rule_pack": rp.code} for c in p.changes)
    return changes


def _lock_counties(p: _Pass, codes: Sequence[str]) -> None:
    """Take the county sums' row locks first, so two re-grades in one county serialise (PostgreSQL)."""
    _lock_sums(p.pack.code, [("county", c) for c in _counties_of(codes)])


def _counties_of(codes: Sequence[str]) -> set[str]:
    counties: set[str] = set()
    for start in range(0, len(codes), CHUNK):
        chunk = codes[start:start + CHUNK]
        counties.update(db.session.scalars(select(Parcel.county_code).where(Parcel.code.in_(chunk))))
    return counties


def regrade_new_parcels(codes: Sequence[str], counties: Iterable[str], actor: Actor = SYSTEM) -> None:
    """New parcels change maintained roll-up sums, and parcels that just got held samples may now grade.

    Where a county has no maintained sums its area grades are computed when read, so new
    parcels without samples need no work here: that keeps a 100,000-parcel import fast.
    """
    if any(county_has_state(county, DEFAULT_PACK) for county in counties):
        regrade_parcels(codes, actor=actor)
        return
    sampled: set[str] = set()
    codes = list(codes)
    for start in range(0, len(codes), CHUNK):
        sampled.update(db.session.scalars(select(Sample.parcel_code).where(
            Sample.parcel_code.in_(codes[start:start + CHUNK])).distinct()))
    if sampled:
        regrade_parcels(sorted(sampled), actor=actor)


def regrade_for_samples(sample_ids: Iterable[str], actor: Actor = SYSTEM) -> list[dict[str, Any]]:
    """The parcels of these samples, re-graded (lab approval, sample edit, conflict resolution)."""
    ids = sorted(set(sample_ids))
    parcels: set[str] = set()
    for start in range(0, len(ids), CHUNK):
        parcels.update(db.session.scalars(select(Sample.parcel_code).where(Sample.id.in_(ids[start:start + CHUNK]))))
    return regrade_parcels(parcels, actor=actor)
