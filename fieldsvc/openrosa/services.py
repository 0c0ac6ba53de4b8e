"""OpenRosa submissions become sync pushes; their files become content-addressed media blobs.

Flush, never commit: the request commits. Nothing here judges a sample: the record built from
the XML goes through ``fieldsvc.sync.push.push`` exactly like a phone's push, and the
files through ``fieldsvc.media.services.receive_chunk`` exactly like a resumable upload
(push first, then the files: the sample turns ``complete`` when its last named file lands).

Split submissions (``*isIncomplete*=yes``): every part carries the whole XML but only some of
the files. A photo the XML names whose bytes have not arrived yet has no SHA-256, which the
manifest needs; it is listed with a stand-in entry (``mime`` = ``PENDING_MIME``, ``bytes`` 1,
``sha256`` = SHA-256 of ``openrosa-pending:<sample id>:<file name>``, which no real file has),
so the sample reads ``awaiting_media``. When the file arrives the stand-in is replaced by the
real entry: a new version of the sample, pushed with ``base_version``, audited like any edit.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import mimetypes
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any, BinaryIO, Mapping

from sqlalchemy import select

from ..auth import services as auth
from ..auth.principal import Actor
from ..dbtypes import isoformat
from ..errors import Problem, unauthorized
from ..extensions import db
from ..media import services as media
from ..media.storage import BLOCK
from ..samples import services as samples
from ..samples.content import content_hash
from ..samples.models import Sample
from ..samples.validation import validate_sample_data
from ..sequence import allocate
from ..sync import push
from . import extensions, xform
from .models import OpenRosaSubmission
from .submission import PHOTO_FIELDS, Submission

PENDING_MIME = "application/vnd.fieldsvc.pending"
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")
# push status → OpenRosa HTTP status (DESIGN §4.3; documented in the README's OpenRosa section)
HTTP_STATUS = {"applied": 201, "duplicate": 201, "merged": 201, "held": 202, "conflict": 409, "rejected": 400}


# --- the form ------------------------------------------------------------------------------

@lru_cache(maxsize=8)
def _form(sample_types: tuple[str, ...], land_uses: tuple[str, ...], depth_max_cm: float,
          extension_version: int | None, extension_sha: str | None) -> xform.Form:
    questions = extensions.questions_of(extension_version) if extension_version else []
    return xform.build_form(sample_types, land_uses, depth_max_cm=depth_max_cm, extensions=questions,
                            extension_version=extension_version)


def current_form() -> xform.Form:
    """The soil-sample form from the server's code lists (the sample validation's rules) and the
    newest uploaded extension (its questions under the ``extra`` group)."""
    rules = samples.RULES
    newest = extensions.newest()
    return _form(tuple(rules.sample_types), tuple(rules.land_uses), float(rules.depth_max_cm),
                 newest.version if newest else None, newest.sha256 if newest else None)


# --- HTTP Basic ----------------------------------------------------------------------------

def basic_actor(credentials: str, address: str, config: Mapping[str, Any]) -> Actor | Problem:
    """A user from HTTP Basic credentials, with the same failure limits as ``POST /api/v1/auth/token``.

    Returns (not raises) the 401 Problem after counting the failure, so the caller can commit
    the count. No token is issued: Basic is checked on every request, as Collect sends it.
    :raise 429 rate_limited: too many failures for this username or address.
    """
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return unauthorized("Send HTTP Basic credentials (base64 of username:password).", code="invalid_credentials")
    username, colon, password = decoded.partition(":")
    if not colon or not username:
        return unauthorized("Send HTTP Basic credentials (base64 of username:password).", code="invalid_credentials")
    user = auth.check_password(username, password, address, config)  # the same counters as the token login
    if user is None:
        return unauthorized("Unknown username or wrong password.", code="invalid_credentials")
    return Actor(user.id, user.username, user.role, user.county_code)


# --- files ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Part:
    """One file of a submission, hashed on arrival (the bytes stay in the request's spool)."""

    name: str
    sha256: str
    bytes: int
    mime: str
    stream: BinaryIO

    @property
    def entry(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "bytes": self.bytes, "mime": self.mime}


def read_part(name: str, stream: BinaryIO, content_type: str | None) -> Part:
    digest, size = hashlib.sha256(), 0
    while block := stream.read(BLOCK):
        digest.update(block)
        size += len(block)
    stream.seek(0)
    return Part(name, digest.hexdigest(), size, guess_mime(name, content_type), stream)


def guess_mime(name: str, content_type: str | None) -> str:
    mime = (content_type or "").split(";")[0].strip().lower()
    if not _MIME.fullmatch(mime) or mime == "application/octet-stream":
        mime = (mimetypes.guess_type(name)[0] or mime or "application/octet-stream").lower()
    return mime if _MIME.fullmatch(mime) else "application/octet-stream"


def pending_entry(sample_id: str, name: str) -> dict[str, Any]:
    sha = hashlib.sha256(f"openrosa-pending:{sample_id}:{name}".encode()).hexdigest()
    return {"name": name, "sha256": sha, "bytes": 1, "mime": PENDING_MIME}


def is_pending(entry: Mapping[str, Any]) -> bool:
    return entry.get("mime") == PENDING_MIME


# --- submissions ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    status: int  # the HTTP status of the OpenRosa response
    message: str
    result: dict[str, Any]  # the push result for the record
    state: str | None
    missing: list[str]  # photo file names still to come
    sample_id: str = ""  # the sample written (an edit's is the replaced instance's sample)


def device_sent_at(date_header: str | None, now: datetime) -> str | None:
    """The device's send time as far as the ``Date`` header can be trusted, for the skew estimate.

    Collect writes ``Date`` on a 12-hour clock without AM/PM (``hh``), so its hour is known only
    modulo 12: 21:30 is sent as 09:30. The header is therefore never taken as the device's clock;
    of its readings (as sent, 12 hours later, 12 hours earlier) the one nearest the server's
    clock is used, so a skew is flagged only on evidence that survives the ambiguity (a clock
    wrong by minutes or a few hours still shows; a whole 12 hours cannot be told from AM/PM).
    """
    if not date_header:
        return None
    try:
        sent = parsedate_to_datetime(date_header)
    except (TypeError, ValueError, IndexError):
        return None
    if sent is None or sent.tzinfo is None:
        return None
    half_day = timedelta(hours=12)
    nearest = min((sent - half_day, sent, sent + half_day), key=lambda t: abs((t - now).total_seconds()))
    return isoformat(nearest)


@dataclass(frozen=True)
class Client:
    """Who sent the submission, kept with the sample version it makes."""

    collect_device_id: str | None = None  # Collect's ``?deviceID=`` (e.g. ``collect:Xz...``)
    user_agent: str | None = None


def edit_target(sub: Submission) -> tuple[str, int | None]:
    """The sample a submission writes and the version it was based on.

    A new instance is its own sample (``instanceID`` gives the id, DESIGN §4.3). An edit names the
    instance it replaces (``deprecatedID``): the sample that instance went to, based on the
    version it made, so the sync merge judges the edit like a push with ``base_version``. An
    instance received before instances were recorded is its own sample's version 1.
    """
    if sub.deprecated_id is None:
        return sub.id, None
    replaced = db.session.get(OpenRosaSubmission, sub.deprecated_id)
    if replaced is not None:
        return replaced.sample_id, replaced.sample_version
    if db.session.get(Sample, sub.deprecated_id) is not None:
        return sub.deprecated_id, 1
    return sub.id, None  # the replaced instance never arrived here: the edit is a new sample


def submit(sub: Submission, parts: Mapping[str, Part], actor: Actor, *, sent_at: str | None, incomplete: bool,
           hold_ttl_s: int, client: Client = Client()) -> Outcome:
    """Push the submission's record and store its files; see the module docstring."""
    allocate(1)  # the change-sequence lock first: parts of one instance (and pushes) serialise
    extra, extension_version = extensions.check_answers(sub.extra, sub.form_version)  # 400 naming the question
    extra_images = extensions.image_answers(extensions.questions_of(extension_version), extra) if extra else []
    sample_id, edit_base = edit_target(sub)
    sample = db.session.get(Sample, sample_id, populate_existing=True)
    live = sample if sample is not None and sample.deleted_at is None else None
    stored = {m["name"]: m for m in (live.media or [])} if live is not None else {}
    manifest = []
    for name in dict.fromkeys([*(sub.photos[f] for f in PHOTO_FIELDS if f in sub.photos), *extra_images]):
        part = parts.get(name)
        manifest.append(part.entry if part is not None else stored.get(name) or pending_entry(sample_id, name))
    data = {**sub.data, "media": manifest}
    if extra:  # the sample's ``extra``, as a sync push carries it: one storage for both clients
        data.update(extra=extra, extension_version=extension_version)
    base_version = edit_base
    if base_version is None and live is not None and _fills_pending(live, data):
        base_version = live.version
    if base_version is None and live is not None and extra and not live.extra and _answers_kept_apart(sub, extra):
        base_version = live.version
    body = {"device_sent_at": sent_at, "schema_version": 1,
            "records": [{"type": "sample", "id": sample_id, "base_version": base_version, "data": data}]}
    who = push.Client("openrosa", client.collect_device_id, client.user_agent)
    result = push.push(body, actor, hold_ttl_s=hold_ttl_s, max_records=1, client=who)["results"][0]
    status = HTTP_STATUS.get(result["status"], 400)
    if status in (201, 202, 409):
        _record_instance(sub, sample_id, result, actor, client, extra, extension_version)
    if status in (201, 202):
        named = {m["name"] for m in manifest}
        store = media.storage()
        for part in {p.sha256: p for p in parts.values() if p.name in named}.values():
            outcome = media.receive_chunk(part.sha256, 0, part.bytes - 1, part.bytes, part.stream, actor, store)
            if isinstance(outcome, Problem):  # pragma: no cover - the hash was taken from these bytes
                raise outcome
    sample = db.session.get(Sample, sample_id, populate_existing=True)
    state = samples.effective_state(sample) if sample is not None else None
    named_media = list(sample.media or []) if sample is not None else []
    arrived = samples.complete_media(m["sha256"] for m in named_media)
    missing = [m["name"] for m in named_media if is_pending(m) or m["sha256"] not in arrived]
    return Outcome(status, _message(result, state, missing, incomplete), result, state, missing, sample_id)


def _record_instance(sub: Submission, sample_id: str, result: Mapping[str, Any], actor: Actor, client: Client,
                     extra: dict[str, Any], extension_version: int | None) -> None:
    """Keep the instance → sample version, with Collect's device id and User-Agent (a resend of
    the same instance updates its row: the version it last made). A conflicting XML under a
    known instanceID leaves the row as it was: the conflict keeps both bodies."""
    row = db.session.get(OpenRosaSubmission, sub.id)
    if row is not None and result["status"] == "conflict":
        return
    if row is None:
        row = OpenRosaSubmission(instance_id=sub.id, sample_id=sample_id, deprecated_id=sub.deprecated_id)
        db.session.add(row)
    if result["status"] != "duplicate" or row.sample_version is None:
        row.sample_version = result.get("version")
    row.status = result["status"]
    row.form_version = (sub.form_version or "")[:64] or None
    row.collect_device_id = (client.collect_device_id or "")[:128] or None
    row.user_agent = (client.user_agent or "")[:255] or None
    row.device_pk = actor.device_pk
    row.extra = extra or None
    row.extension_version = extension_version if extra else None
    db.session.flush()


def instances_of(sample_id: str) -> list[OpenRosaSubmission]:
    """The OpenRosa instances received for a sample, oldest first (device id, User-Agent, extra)."""
    return list(db.session.scalars(select(OpenRosaSubmission).where(OpenRosaSubmission.sample_id == sample_id)
                                   .order_by(OpenRosaSubmission.received_at, OpenRosaSubmission.instance_id)))


def sample_extra(sample_id: str) -> dict[str, Any]:
    """The ``extra`` answers of a sample received from Collect before answers were kept on the
    sample itself: those of the newest instance it took (an edit replaces them all, as Collect
    sends the whole form again; a kept conflict does not). Newer samples carry ``extra`` in their data."""
    row = db.session.scalar(select(OpenRosaSubmission).where(
        OpenRosaSubmission.sample_id == sample_id, OpenRosaSubmission.status != "conflict")
        .order_by(OpenRosaSubmission.sample_version.desc(), OpenRosaSubmission.received_at.desc()).limit(1))
    return dict(row.extra or {}) if row is not None else {}


def _answers_kept_apart(sub: Submission, extra: Mapping[str, Any]) -> bool:
    """This very instance was received before answers were kept on the sample (only its
    ``openrosa_submissions`` row has them): Collect resending it makes a version that adds them,
    not a conflict with the sample it made."""
    row = db.session.get(OpenRosaSubmission, sub.id)
    return row is not None and row.status != "conflict" and row.extra == dict(extra)


def _fills_pending(sample: Sample, data: Mapping[str, Any]) -> bool:
    """Same content as stored, except that stand-in photo entries now have their real file."""
    old = list(sample.media or [])
    new = list(data.get("media") or [])
    if len(old) != len(new) or not any(is_pending(o) and not is_pending(n) for o, n in zip(old, new, strict=True)):
        return False
    if any(o["name"] != n["name"] or (o != n and not is_pending(o)) for o, n in zip(old, new, strict=True)):
        return False
    checked = validate_sample_data({**data, "media": old}, samples.RULES)
    return checked.ok and content_hash(checked.clean) == sample.content_hash


def clause(text: str) -> str:
    """``text`` without its closing full stop (to be joined into a longer sentence)."""
    return text.rstrip().rstrip(".。").rstrip()


def sentence(text: str) -> str:
    """``text`` ending in exactly one full stop (messages joined from parts never end in "..")."""
    text = text.rstrip()
    return text if text.endswith(("?", "!", "。")) else clause(text) + "."


def _message(result: Mapping[str, Any], state: str | None, missing: list[str], incomplete: bool) -> str:
    status, code = result["status"], result.get("code")
    if status in ("applied", "duplicate", "merged"):
        text = ("Sample received" if status != "duplicate" else "Sample already received") + f" ({state})."
        if missing:
            text += " Waiting for: " + ", ".join(missing) + "."
        elif incomplete:
            text += " Send the remaining files of this submission."
        return text
    if status == "held":
        return (f"Sample accepted and held: the parcel is not known to the server yet (held until "
                f"{result.get('held_until')}); it is linked when the parcel arrives.")
    errors = "; ".join(f"{k.removeprefix('data.')}: {clause(' '.join(map(str, v)))}"
                       for k, v in (result.get("errors") or {}).items())
    if status == "conflict":
        return (f"Conflict ({code}): this instanceID was already received with different content; both "
                f"versions are kept for an official to resolve." + (f" {sentence(errors)}" if errors else ""))
    return sentence(f"Rejected ({code}): {errors or 'the sample is invalid'}")
