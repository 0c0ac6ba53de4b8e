"""An official's review of a flagged sample: accept its flags with a note, or send it back to its device.

DESIGN §3 gives a sample ``state`` and an open list of ``flags``, and a pull (§4.2) sends both; it has
no other field for "an official looked at this". So the review is written as two more flags:

- ``accepted``: the official accepted every flag the sample carries (they stay, so the reason is
  never lost); the sample leaves the flagged queue.
- ``sent_back``: the device should check the sample and push it again; its next pull brings the
  sample with this flag, which the field app shows as needing attention.

Either is a new sample version (the first one kept, ``seq`` moved so pulls carry it) and an audit
event holding the note. A device's next edit re-derives the flags from what it sent, so both review
flags drop away and a new flag (or the same one) comes back to the queue. The sample's state is not
touched: grading reads the state and the results, never the flags, so nothing is re-graded.
"""

from __future__ import annotations

from ..audit.services import Change, record_many
from ..auth.principal import Actor
from ..dbtypes import utcnow
from ..errors import conflict, validation_failed
from ..extensions import db
from ..sequence import allocate
from .models import Sample
from .services import data_text, get_sample_by_id, keep_first_version
from .validation import order_flags

REVIEW_FLAGS = ("accepted", "sent_back")
NOTE_MAX = 500


def review_flags(flags: list[str] | None) -> list[str]:
    """The flags an official reviews (every flag but the review's own)."""
    return [f for f in flags or [] if f not in REVIEW_FLAGS]


def needs_review(sample: Sample) -> bool:
    """A live sample with a flag nobody has accepted yet."""
    return sample.deleted_at is None and bool(review_flags(sample.flags)) and "accepted" not in (sample.flags or [])


def _check(sample: Sample, note: str, *, note_required: bool) -> str:
    note = (note or "").strip()
    if note_required and not note:
        raise validation_failed({"note": ["say why the flags are acceptable"]})
    if len(note) > NOTE_MAX:
        raise validation_failed({"note": [f"at most {NOTE_MAX} characters"]})
    if sample.deleted_at is not None or not review_flags(sample.flags):
        raise conflict("not_flagged", f"Sample {sample.code} has no flags to review.")
    return note


def _write(sample: Sample, flags: list[str], action: str, note: str, actor: Actor) -> Sample:
    keep_first_version(sample)
    before = {"flags": list(sample.flags or [])}
    now = utcnow()
    sample.flags = order_flags(flags)
    sample.version += 1
    sample.seq = allocate()[0]
    sample.updated_at = now
    db.session.flush()
    # the version row keeps the content (unchanged: flags are the server's, DESIGN §3); the audit
    # event's details keep who decided what and why
    record_many(actor.label, [Change("sample", sample.id, action, before=before, version=sample.version,
                                     after_json=data_text(sample))],
                details={"note": note, "flags_before": before["flags"], "flags": list(sample.flags)})
    return sample


def accept_flags(sample_id: str, note: str, actor: Actor) -> Sample:
    """Accept the sample's flags (a note says why); they are kept, marked ``accepted``.

    :raise 404: not a sample the caller may see. :raise 409 not_flagged, already_accepted.
    :raise 422 (``note``): missing or too long.
    """
    sample = get_sample_by_id(sample_id, actor, for_update=True)
    note = _check(sample, note, note_required=True)
    if "accepted" in (sample.flags or []):
        raise conflict("already_accepted", f"The flags of sample {sample.code} are accepted already.")
    return _write(sample, [*review_flags(sample.flags), "accepted"], "accept_flags", note, actor)


def send_back(sample_id: str, note: str, actor: Actor) -> Sample:
    """Send the sample back to its device: flagged ``sent_back`` (any acceptance withdrawn).

    :raise 404: not a sample the caller may see. :raise 409 not_flagged, already_sent_back.
    """
    sample = get_sample_by_id(sample_id, actor, for_update=True)
    note = _check(sample, note, note_required=False)
    if "sent_back" in (sample.flags or []):
        raise conflict("already_sent_back", f"Sample {sample.code} was sent back already.")
    return _write(sample, [*review_flags(sample.flags), "sent_back"], "send_back", note, actor)
