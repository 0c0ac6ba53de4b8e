"""Resumable media: HEAD offsets, chunked PUT, resume after drops, hash check, sample completeness."""

from __future__ import annotations

import hashlib
import os

import pytest

from tests.api.test_http import ExplodingStream
from tests.api.test_sync_push import data_for, push, record, results
from tests.helpers import assert_problem

MB = 1024 * 1024


@pytest.fixture(scope="module")
def photo():
    data = os.urandom(20 * MB)
    return data, hashlib.sha256(data).hexdigest()


def put(client, headers, sha, data, start, total, body=None, **kwargs):
    chunk = data[start:start + MB] if body is None else body
    end = start + len(chunk) - 1
    return client.put(f"/api/v1/media/{sha}", data=chunk, headers={
        **headers, "Content-Range": f"bytes {start}-{end}/{total}", "Content-Type": "application/octet-stream"},
        **kwargs)


def head(client, headers, sha):
    return client.head(f"/api/v1/media/{sha}", headers=headers)


def test_20mb_photo_in_1mb_chunks_resumes_after_three_dropped_chunks(client, phone, official, photo, app):
    data, sha = photo
    h = phone["headers"]
    total = len(data)
    assert head(client, h, sha).status_code == 404
    # the sample arrives first: it waits for its photo
    rec = record(data_for(phone["parcels"][0], "MEDIA-1",
                          media=[{"name": "a.jpg", "sha256": sha, "bytes": total, "mime": "image/jpeg"}]))
    [res] = results(push(client, h, [rec]))
    assert res["status"] == "applied" and res["state"] == "awaiting_media"
    dropped = {3, 9, 15}
    start, sent = 0, 0
    while start < total:
        index = start // MB
        if index in dropped:
            dropped.discard(index)  # the phone thinks it sent this one; the link dropped it
            start += MB
            continue
        resp = put(client, h, sha, data, start, total)
        sent += 1
        if resp.status_code == 409:
            assert resp.get_json()["code"] == "offset_mismatch"
            probe = head(client, h, sha)
            assert probe.status_code == 308
            assert probe.headers["Upload-Offset"] == resp.headers["Upload-Offset"] == str(index * MB - MB)
            start = int(probe.headers["Upload-Offset"])
            continue
        assert resp.status_code in (308, 201), resp.get_json()
        start = int(resp.headers["Upload-Offset"])
    assert resp.status_code == 201 and resp.get_json()["complete"] is True
    assert sent == 20 + 3  # three failed attempts, then every chunk once
    assert head(client, h, sha).status_code == 200
    with client.get(f"/api/v1/media/{sha}", headers=official.headers) as got:
        assert got.status_code == 200 and hashlib.sha256(got.data).hexdigest() == sha
    body = client.get(f"/api/v1/samples/{rec['id']}", headers=official.headers).get_json()
    assert body["state"] == "complete"
    assert (os.path.isfile(os.path.join(app.instance_path, "media", sha[:2], sha)))


@pytest.fixture
def phone(client, official, county, make_account):
    from tests.api.test_sync_push import parcels_in, register_device, village_codes

    villages = village_codes(county, 2)
    headers, device_id = register_device(client, official, make_account, villages=villages)
    return {"headers": headers, "device_id": device_id, "parcels": parcels_in(county, villages)}


def test_resent_chunk_matching_is_noop_and_different_is_refused(client, phone):
    data = os.urandom(3 * MB)
    sha = hashlib.sha256(data).hexdigest()
    h = phone["headers"]
    assert put(client, h, sha, data, 0, len(data)).status_code == 308
    assert put(client, h, sha, data, MB, len(data)).status_code == 308
    again = put(client, h, sha, data, 0, len(data))  # a retry of a chunk that did arrive
    assert again.status_code == 308 and again.headers["Upload-Offset"] == str(2 * MB)
    other = put(client, h, sha, data, 0, len(data), body=b"x" * MB)
    assert_problem(other, 409, "chunk_mismatch")
    assert head(client, h, sha).headers["Upload-Offset"] == str(2 * MB)
    # a body cut short: nothing is counted, the offset stays
    short = client.put(f"/api/v1/media/{sha}", data=data[2 * MB:2 * MB + 1000], headers={
        **h, "Content-Range": f"bytes {2 * MB}-{3 * MB - 1}/{3 * MB}"},
        environ_overrides={"CONTENT_LENGTH": str(MB)})
    assert short.status_code in (400, 422)
    assert head(client, h, sha).headers["Upload-Offset"] == str(2 * MB)
    assert put(client, h, sha, data, 2 * MB, len(data)).status_code == 201


def test_hash_mismatch_drops_partial_data(client, phone, app):
    data = os.urandom(2 * MB)
    wrong = hashlib.sha256(b"something else").hexdigest()
    h = phone["headers"]
    assert put(client, h, wrong, data, 0, len(data)).status_code == 308
    resp = put(client, h, wrong, data, MB, len(data))
    assert_problem(resp, 422, "hash_mismatch")
    assert head(client, h, wrong).status_code == 404
    assert not os.path.exists(os.path.join(app.instance_path, "media", "partial", f"{wrong}.part"))


def test_media_before_sample_makes_sample_complete_at_once(client, phone, official):
    data = b"tiny photo bytes"
    sha = hashlib.sha256(data).hexdigest()
    resp = client.put(f"/api/v1/media/{sha}", data=data, headers=phone["headers"])  # whole file, no range
    assert resp.status_code == 201
    assert client.put(f"/api/v1/media/{sha}", data=data, headers=phone["headers"]).status_code == 200
    rec = record(data_for(phone["parcels"][0], "MEDIA-2",
                          media=[{"name": "b.jpg", "sha256": sha, "bytes": len(data), "mime": "image/jpeg"}]))
    [res] = results(push(client, phone["headers"], [rec]))
    assert res["state"] == "complete"


def test_bad_requests_name_the_problem(client, phone, app, official, make_account):
    h = phone["headers"]
    sha = "a" * 64
    size = app.config["MAX_REQUEST_BYTES"] + 1
    resp = client.put(f"/api/v1/media/{sha}", headers={**h, "Content-Range": f"bytes 0-{size - 1}/{size}"},
                      environ_overrides={"CONTENT_LENGTH": str(size), "wsgi.input": ExplodingStream()})
    body = assert_problem(resp, 413, "payload_too_large")
    assert body["details"]["max_bytes"] == app.config["MAX_REQUEST_BYTES"]
    assert_problem(client.put(f"/api/v1/media/{sha}", data=b"abc", headers={**h, "Content-Range": "bytes x"}),
                   422, "validation_failed", field="Content-Range")
    assert_problem(client.put(f"/api/v1/media/{sha}", data=b"abc",
                              headers={**h, "Content-Range": "bytes 0-9/10"}), 422, "validation_failed",
                   field="Content-Range")
    assert_problem(client.put("/api/v1/media/not-a-hash", data=b"abc", headers=h), 422, "validation_failed",
                   field="sha256")
    gap = client.put(f"/api/v1/media/{sha}", data=b"abc", headers={**h, "Content-Range": "bytes 5-7/10"})
    assert_problem(gap, 409, "offset_mismatch")
    assert gap.headers["Upload-Offset"] == "0"
    assert_problem(client.put(f"/api/v1/media/{sha}", data=b"abc", headers=official.headers), 403, "forbidden")
    lab = make_account("lab")
    assert_problem(client.get(f"/api/v1/media/{sha}", headers=lab.headers), 403, "forbidden")
