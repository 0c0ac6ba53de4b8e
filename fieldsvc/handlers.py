"""The event chain: every consequence of every write, in one screen (adapter layer).

Domains publish what they changed (``fieldsvc.events``); this module alone decides what follows,
and ``create_app`` installs it next to the blueprints. Subscribers of one event run in the order
listed here, at once, in the publishing request's transaction; one that changes more publishes
in turn (linking held samples → ``SamplesChanged`` → re-grade → ``GradesChanged`` → revoke).

``CHAIN`` at the bottom is the list; ``docs/architecture.md`` shows it as a table with who
publishes each event.
"""

from __future__ import annotations

from flask import Flask

from . import events
from .certificates import services as certificates
from .events import (
    CertificateIssued,
    CertificateRevoked,
    Chain,
    GradesChanged,
    MediaCompleted,
    ParcelsChanged,
    ParcelsImported,
    ResultsApproved,
    SamplesChanged,
    SamplesCreated,
)
from .grading import plans, regrade
from .lab import services as lab
from .samples import services as samples
from .tiles import cache as tile_cache


def link_held_samples(e: ParcelsImported) -> None:
    samples.link_held_samples(e.codes, e.actor)


def regrade_new_parcels(e: ParcelsImported) -> None:
    regrade.regrade_new_parcels(e.codes, e.counties, e.actor)


def regrade_parcels(e: ParcelsChanged) -> None:
    regrade.regrade_parcels(e.codes, actor=e.actor)


def link_held_results(e: SamplesCreated) -> None:
    lab.link_held_results_for(e.samples, e.actor.label)


def close_planned_new(e: SamplesCreated) -> None:
    plans.close_for_samples([sid for sid, _code in e.samples], e.actor)


def close_planned_changed(e: SamplesChanged) -> None:
    plans.close_for_samples(e.ids, e.actor)


def regrade_samples(e: SamplesChanged) -> None:
    regrade.regrade_for_samples(e.ids, e.actor)


def regrade_approved(e: ResultsApproved) -> None:
    regrade.regrade_for_samples(e.sample_ids, e.actor)


def complete_samples(e: MediaCompleted) -> None:
    samples.mark_media_complete(e.sha256s, e.actor)


def revoke_unqualified(e: GradesChanged) -> None:
    held = certificates.certified_subjects((c.subject_type, c.code) for c in e.changes)
    for c in e.changes:
        if (c.subject_type, c.code) in held:  # the others have nothing to revoke or note
            certificates.on_grade_changed(c.subject_type, c.code, c.qualified, c.reason)


def outdate_cached_tiles(_e: ParcelsImported | ParcelsChanged | SamplesCreated | SamplesChanged | ResultsApproved
                         | GradesChanged) -> None:
    """Parcel tiles show parcels, their grades and sampling state: a cached tile is stale after any of these
    (so are the console's county numbers, ``console.county_memo``, kept under the same version)."""
    tile_cache.invalidate()


CHAIN: Chain = (
    (ParcelsImported, link_held_samples),
    (ParcelsImported, regrade_new_parcels),
    (ParcelsChanged, regrade_parcels),
    (SamplesCreated, link_held_results),
    (SamplesCreated, close_planned_new),
    (SamplesChanged, regrade_samples),
    (SamplesChanged, close_planned_changed),
    (MediaCompleted, complete_samples),
    (ResultsApproved, regrade_approved),
    (GradesChanged, revoke_unqualified),
    (ParcelsImported, outdate_cached_tiles),
    (ParcelsChanged, outdate_cached_tiles),
    (SamplesCreated, outdate_cached_tiles),
    (SamplesChanged, outdate_cached_tiles),
    (ResultsApproved, outdate_cached_tiles),
    (GradesChanged, outdate_cached_tiles),
)
UNHANDLED = (CertificateIssued, CertificateRevoked)  # published for the record; nothing follows yet


def register(app: Flask) -> None:
    """Install the chain on ``app`` (``create_app`` calls this beside the blueprints)."""
    events.install(app, CHAIN)
