"""Field evidence on parcel pages and the review of flagged samples (issue 16).

An official sees what the field collected (photos through the media access policy, point and
accuracy, sampler and device, local time, depths, flags in words) and either accepts a sample's
flags with a note (audited, a new version, the flags kept and marked) or sends it back to its
device, whose next pull carries the sample flagged ``sent_back``.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from dataclasses import dataclass

from sqlalchemy import select

from tests.api.test_console_pages import Console, Scene, build_scene, push, record, sample_data, text_of


def tiny_png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 160, 90)).save(out, format="PNG")
    return out.getvalue()


@dataclass
class Evidence:
    parcel: str
    photo_sample: str  # bag code of the sample with a photo, low accuracy, no depths, an unparsable time
    photo_sample_id: str
    flagged_sample_id: str
    sha: str


def add_evidence(app, api, county, scene: Scene, tag: str = "") -> Evidence:
    """On the scene's flagged sample's parcel: a second sample with a photo (uploaded), an 80 m fix,
    and (set on its row, as an older record may hold) no depths and a clock the server cannot read."""
    from fieldsvc.extensions import db
    from fieldsvc.samples.models import Sample

    with app.app_context():
        flagged = db.session.scalar(select(Sample).where(Sample.code == scene.flagged_sample))
        parcel, flagged_id = flagged.parcel_code, flagged.id
    feature = next(f for f in county.parcels if f["properties"]["code"] == parcel)
    photo = tiny_png()
    sha = hashlib.sha256(photo).hexdigest()
    code = f"C{tag}-PHOTO-1"
    data = sample_data(feature, code,
                       media=[{"name": "bag.png", "sha256": sha, "bytes": len(photo), "mime": "image/png"}])
    data["location"]["accuracy_m"] = 80.0
    sid = str(uuid.uuid4())
    out = push(api, scene.device_headers, record(data, sid))
    assert out[0]["status"] == "applied", out[0]["errors"]
    resp = api.put(f"/api/v1/media/{sha}", data=photo, headers={
        **scene.device_headers, "Content-Range": f"bytes 0-{len(photo) - 1}/{len(photo)}",
        "Content-Type": "application/octet-stream"})
    assert resp.status_code == 201, resp.get_json()
    with app.app_context():  # as an older form's record may arrive: no depths, a clock text nobody can read
        row = db.session.get(Sample, sid)
        row.depth_top_cm = row.depth_bottom_cm = row.collected_at = None
        row.collected_at_raw = "yesterday noon"
        db.session.commit()
    return Evidence(parcel, code, sid, flagged_id, sha)


def _setup(app, client, county, make_account):
    importer, reviewer, sampler = make_account("official"), make_account("official"), make_account("sampler")
    scene = build_scene(client, county, importer.headers, sampler.username)
    ev = add_evidence(app, client, county, scene)
    console = Console(app)
    assert console.login(reviewer.username, reviewer.password).status_code == 303
    return scene, ev, console, importer, sampler


def _sample(client, headers, sample_id):
    return client.get(f"/api/v1/samples/{sample_id}", headers=headers).get_json()


def test_parcel_page_shows_the_field_evidence(app, client, county, make_account):
    scene, ev, console, importer, sampler = _setup(app, client, county, make_account)
    html = text_of(console.get(f"/console/parcel/{ev.parcel}?lang=en"))
    photo_url = f"/console/media/{ev.sha}"
    assert f'<a href="{photo_url}"' in html and f'<img src="{photo_url}?size=thumb"' in html  # thumbnail → full
    assert "location mismatch" in html and "low accuracy" in html  # flags in words
    assert "±80 m" in html and "Phone" in html and sampler.username in html  # accuracy, device, sampler
    assert "2026-11-20 08:30" in html  # the flagged sample's time, local to the minute
    assert "yesterday noon" in html and "not understood" in html  # an unreadable clock said so
    assert "Depth</th><td>not recorded" in html and "None–None" not in html and "<td>None" not in html
    assert "0–20 cm" in html
    # the accuracy circle is on the map config
    assert '&#34;accuracy_m&#34;: 80.0' in html or '"accuracy_m": 80.0' in html
    # the photo itself, as an image, under the access policy
    resp = console.get(photo_url)
    body = resp.get_data()
    resp.close()
    assert resp.status_code == 200 and resp.mimetype == "image/png" and body[:4] == b"\x89PNG"
    thumb = console.get(photo_url + "?size=thumb")
    assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg" and thumb.data[:2] == b"\xff\xd8"
    stranger = make_account("official", county="360130")
    other = Console(app)
    other.login(stranger.username, stranger.password)
    assert other.get(photo_url).status_code == 404 and other.get(photo_url + "?size=thumb").status_code == 404
    assert console.get("/console/media/" + "0" * 64).status_code == 404


def test_accept_asks_then_keeps_the_flags_marked_with_a_new_version(app, client, county, make_account):
    scene, ev, console, importer, _ = _setup(app, client, county, make_account)
    before = _sample(client, importer.headers, ev.flagged_sample_id)
    assert before["flags"] == ["location_mismatch"]
    queue = text_of(console.get("/console/queues?lang=en"))
    assert f'id="flagged-{scene.flagged_sample}"' in queue and "#parcel-map" in queue
    path = f"/console/samples/{ev.flagged_sample_id}/accept"
    missing = console.post(path, {"note": "  "})
    assert missing.status_code == 422 and 'note' in text_of(missing)
    console.get("/console/queues")
    asked = console.post(path, {"note": "walked the boundary: the point is in the next terrace"})
    assert asked.status_code == 200 and 'name="confirmed"' in text_of(asked)
    assert "location mismatch" in text_of(asked)
    assert _sample(client, importer.headers, ev.flagged_sample_id)["version"] == before["version"]
    done = console.post(path, {"note": "walked the boundary: the point is in the next terrace", "confirmed": "1",
                               "next": f"/console/parcel/{ev.parcel}"})
    assert done.status_code == 303 and done.headers["Location"].startswith(f"/console/parcel/{ev.parcel}")
    after = _sample(client, importer.headers, ev.flagged_sample_id)
    assert after["flags"] == ["location_mismatch", "accepted"] and after["version"] == before["version"] + 1
    assert after["state"] == before["state"]
    # out of the queue, the note on the parcel page and in the audit trail, both versions kept
    queue = text_of(console.get("/console/queues"))
    assert f'id="flagged-{scene.flagged_sample}"' not in queue
    page = text_of(console.get(f"/console/parcel/{ev.parcel}?lang=en"))
    assert "flags accepted" in page and "walked the boundary" in page
    audit = text_of(console.get(f"/console/audit/sample/{ev.flagged_sample_id}"))
    assert "walked the boundary" in audit
    from fieldsvc.audit.models import EntityVersion
    from fieldsvc.extensions import db

    with app.app_context():
        versions = db.session.scalars(select(EntityVersion.version).where(
            EntityVersion.entity_type == "sample", EntityVersion.entity_key == ev.flagged_sample_id)).all()
    assert sorted(versions) == [1, 2]
    # again: refused, nothing changes
    again = console.post(path, {"note": "twice", "confirmed": "1"})
    assert again.status_code == 409
    assert _sample(client, importer.headers, ev.flagged_sample_id)["version"] == after["version"]


def test_send_back_reaches_the_device_and_a_new_push_clears_it(app, client, county, make_account):
    scene, ev, console, importer, _ = _setup(app, client, county, make_account)
    pulled = client.get("/api/v1/sync/pull", query_string={"limit": 1000}, headers=scene.device_headers).get_json()
    cursor = pulled["cursor"]
    while pulled["has_more"]:
        pulled = client.get("/api/v1/sync/pull", query_string={"cursor": cursor, "limit": 1000},
                            headers=scene.device_headers).get_json()
        cursor = pulled["cursor"]
    path = f"/console/samples/{ev.photo_sample_id}/send-back"
    console.get("/console/queues")
    asked = console.post(path, {"note": "retake the point, accuracy 80 m"})
    assert asked.status_code == 200 and 'name="confirmed"' in text_of(asked)
    assert console.post(path, {"note": "retake the point, accuracy 80 m", "confirmed": "1"}).status_code == 303
    # the device's next pull brings the sample, flagged as needing attention
    changes = client.get("/api/v1/sync/pull", query_string={"cursor": cursor},
                         headers=scene.device_headers).get_json()["changes"]
    mine = [c for c in changes if c["id"] == ev.photo_sample_id]
    assert len(mine) == 1 and "sent_back" in mine[0]["data"]["flags"] and "low_accuracy" in mine[0]["data"]["flags"]
    # still in the queue (marked), until the device sends it again
    queue = text_of(console.get("/console/queues?lang=en"))
    assert f'id="flagged-{ev.photo_sample}"' in queue and "sent back to the sampler" in queue
    sent = _sample(client, importer.headers, ev.photo_sample_id)
    feature = next(f for f in county.parcels if f["properties"]["code"] == ev.parcel)
    fixed = sample_data(feature, ev.photo_sample, media=sent["media"])
    rec = record(fixed, ev.photo_sample_id)
    rec["base_version"] = sent["version"]
    out = push(client, scene.device_headers, rec)
    assert out[0]["status"] in ("applied", "merged"), out
    again = _sample(client, importer.headers, ev.photo_sample_id)
    assert "sent_back" not in again["flags"] and "low_accuracy" not in again["flags"]
    assert f'id="flagged-{ev.photo_sample}"' not in text_of(console.get("/console/queues"))


def test_review_refuses_unflagged_samples_and_other_counties(app, client, county, make_account):
    scene, ev, console, importer, _ = _setup(app, client, county, make_account)
    console.get("/console/queues")
    refused = console.post(f"/console/samples/{scene.clean_sample_id}/send-back", {"confirmed": "1"})
    assert refused.status_code == 409 and "not_flagged" in text_of(refused)
    stranger = make_account("official", county="360130")
    other = Console(app)
    other.login(stranger.username, stranger.password)
    other.get("/console/queues")
    assert other.post(f"/console/samples/{ev.flagged_sample_id}/accept",
                      {"note": "x", "confirmed": "1"}).status_code == 404
    assert _sample(client, importer.headers, ev.flagged_sample_id)["flags"] == ["location_mismatch"]


def test_duration_and_distinct_orange_colours():
    from fieldsvc.console.display import duration
    from fieldsvc.tiles.services import COLOURS

    assert duration(86399.6, "en") == "24 h" and duration(5400, "en") == "1.5 h"
    assert duration(30, "zh") == "不到 1 分钟" and duration(-600, "en") == "10 min"
    assert duration(3 * 86400, "en") == "3 days" and duration(None, "en") == "—"

    def rgb(hex_: str) -> tuple[int, ...]:
        return tuple(int(hex_[i:i + 2], 16) for i in (1, 3, 5))

    a, b = rgb(COLOURS["grade"]["needs_sampling"]), rgb(COLOURS["grade"]["indeterminate"])
    assert sum((x - y) ** 2 for x, y in zip(a, b, strict=True)) ** 0.5 > 80  # told apart at a glance, not two oranges
