"""Domain events: what a write changed, told to whoever must follow up, in the same transaction.

A domain publishes a small frozen event after its own write (``publish(SamplesChanged(...))``);
it never imports the domains that react. The reactions (the *chain*) are listed once, in
``fieldsvc.handlers``, and installed on the app by ``create_app``. ``publish`` runs every
subscriber of the event's type at once, in the listed order, inside the caller's transaction;
a subscriber may publish in turn (depth first). So DESIGN §5's "re-graded in the same request"
still holds, and an error anywhere rolls back the whole request.

This module is core: events carry codes, ids and the acting ``Actor``, never ORM rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from flask import Flask, current_app

from .auth.principal import SYSTEM, Actor

EXTENSION = "fieldsvc.events"


@dataclass(frozen=True)
class Event:
    """Base of every event; ``actor`` is who made the change (audit labels follow it)."""


@dataclass(frozen=True)
class ParcelsImported(Event):
    """New parcels were stored (a GeoJSON import)."""
    codes: tuple[str, ...]
    counties: tuple[str, ...]
    actor: Actor = SYSTEM


@dataclass(frozen=True)
class ParcelsChanged(Event):
    """Stored parcels were edited or deleted (area, village, park, land use or existence), or a
    sample they counted moved to another parcel."""
    codes: tuple[str, ...]
    actor: Actor = SYSTEM


@dataclass(frozen=True)
class SamplesCreated(Event):
    """New samples arrived (sync push, OpenRosa): ``samples`` are ``(id, bag code)`` pairs."""
    samples: tuple[tuple[str, str], ...]
    actor: Actor = SYSTEM


@dataclass(frozen=True)
class SamplesChanged(Event):
    """Stored samples changed in a way grading reads: edited, moved, linked to their parcel,
    completed by their media, deleted."""
    ids: tuple[str, ...]
    actor: Actor = SYSTEM


@dataclass(frozen=True)
class MediaCompleted(Event):
    """These blobs are now complete (every byte arrived, or found published after a crash)."""
    sha256s: tuple[str, ...]
    actor: Actor = SYSTEM


@dataclass(frozen=True)
class ResultsApproved(Event):
    """These samples' latest approved lab results changed (an approval, or an approved result linked)."""
    sample_ids: tuple[str, ...]
    actor: Actor = SYSTEM


@dataclass(frozen=True)
class GradeChanged:
    """One subject whose verdict or grade moved, as certificates need it."""
    subject_type: str
    code: str
    qualified: bool
    reason: str


@dataclass(frozen=True)
class GradesChanged(Event):
    """Grades under the default rule pack changed (only subjects that had a grade before)."""
    changes: tuple[GradeChanged, ...]
    actor: Actor = SYSTEM


@dataclass(frozen=True)
class CertificateIssued(Event):
    """A certificate was issued (any earlier valid one for its subject is now superseded)."""
    code: str
    subject_type: str
    subject_code: str


@dataclass(frozen=True)
class CertificateRevoked(Event):
    """A certificate was revoked (by an official, or because its subject stopped qualifying)."""
    code: str
    subject_type: str
    subject_code: str
    reason: str


Subscriber = Callable[[Event], object]
Chain = tuple[tuple[type[Event], Subscriber], ...]


def install(app: Flask, chain: Iterable[tuple[type[Event], Subscriber]]) -> None:
    """Make ``chain`` (``(event type, subscriber)`` pairs, in order) this app's reactions."""
    table: dict[type[Event], list[Subscriber]] = {}
    for kind, subscriber in chain:
        if not (isinstance(kind, type) and issubclass(kind, Event)):
            raise TypeError(f"{kind!r} is not an event type")
        table.setdefault(kind, []).append(subscriber)
    app.extensions[EXTENSION] = {kind: tuple(subs) for kind, subs in table.items()}


def subscribers(kind: type[Event]) -> tuple[Subscriber, ...]:
    try:
        table = current_app.extensions[EXTENSION]
    except KeyError:
        raise RuntimeError("no event chain is installed on this app: build it with fieldsvc.create_app") from None
    return table.get(kind, ())


def publish(event: Event) -> None:
    """Run every subscriber of ``type(event)`` now, in order, in the current transaction."""
    for subscriber in subscribers(type(event)):
        subscriber(event)
