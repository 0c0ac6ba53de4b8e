"""Resumable media upload from the device client through a proxy that cuts connections."""

from __future__ import annotations

import hashlib
import os

import pytest
from sqlalchemy import select

from offline_sync import SyncClient

from .conftest import FastSleep
from .test_device_push import add_samples

PUT = b"PUT /api/v1/media/"
MB = 1024 * 1024


@pytest.mark.slow
def test_20mb_photo_resumes_after_three_drops_without_resending_confirmed_bytes(make_server, make_proxy, tmp_path):
    server = make_server()  # advertises preferred_chunk_bytes = 1 MiB
    proxy = make_proxy(server.port)
    for nth in (3, 9, 15):  # cut mid-chunk three times
        proxy.add(PUT, "cut_request", on=nth, after=600_000)
    proxy.add(PUT, "drop_response", on=6)  # and lose one answer after the chunk was stored
    photo = tmp_path / "profile.jpg"
    payload = os.urandom(20 * MB)
    photo.write_bytes(payload)
    sha = hashlib.sha256(payload).hexdigest()
    sleep = FastSleep()
    with SyncClient(tmp_path / "phone", sleep=sleep) as client:
        client.init(proxy.url, server.token)
        [rid] = add_samples(client, server, 1, photos=[photo])
        photo.unlink()  # the outbox has its own copy, hashed at creation
        report = client.sync(do_pull=False)
        assert report.error is None, report.error
        assert report.media_uploaded == 1
        [m] = client.outbox.media()
        assert (m["sha256"], m["status"], m["uploaded"]) == (sha, "done", 20 * MB)
        sample = client.transport.get_json(f"/api/v1/samples/{rid}")
    assert sample["state"] == "complete" and sample["media"][0]["sha256"] == sha

    from fieldsvc.media.models import MediaBlob

    blobs = server.query(lambda s: [(b.sha256, b.complete, b.received_bytes) for b in s.scalars(select(MediaBlob))])
    assert blobs == [(sha, True, 20 * MB)]
    stored = server.instance / "media"
    files = [p for p in stored.rglob("*") if p.is_file()]
    assert len(files) == 1 and hashlib.sha256(files[0].read_bytes()).hexdigest() == sha
    sent = proxy.bytes_up(PUT)
    assert 20 * MB < sent < 1.25 * 20 * MB, sent  # at most the cut chunks' heads are sent twice
    assert len(sleep.waits) == 4  # three cuts and one lost answer, each followed by HEAD and resume
    puts = proxy.matching(PUT)
    starts = [int(c.header("Content-Range").split()[1].split("-")[0]) for c in puts]
    assert starts[2] == starts[3] == 2 * MB  # a cut chunk is sent again from the server's offset
    # The 6th PUT (4-5 MiB) was stored but its answer lost: the next PUT starts at 5 MiB, not again at 4.
    assert (starts[5], starts[6]) == (4 * MB, 5 * MB)


def test_media_already_on_server_is_not_sent_again(make_server, make_proxy, tmp_path):
    server = make_server(PREFERRED_CHUNK_BYTES=64 * 1024)
    proxy = make_proxy(server.port)
    photo = tmp_path / "a.png"
    photo.write_bytes(os.urandom(200_000))
    with SyncClient(tmp_path / "one", sleep=FastSleep()) as one, SyncClient(tmp_path / "two") as two:
        one.init(proxy.url, server.token)
        two.init(proxy.url, server.token)
        add_samples(one, server, 1, photos=[photo], prefix="ONE")
        add_samples(two, server, 1, photos=[photo], prefix="TWO")
        assert one.sync(do_pull=False).media_uploaded == 1
        assert len(proxy.matching(PUT)) == 4  # 200,000 bytes in 64 KiB chunks
        report = two.sync(do_pull=False)
        assert report.media_uploaded == 1 and report.media_bytes_sent == 0
    assert len(proxy.matching(PUT)) == 4


def test_corrupt_local_copy_is_marked_failed_and_does_not_block(make_server, tmp_path):
    server = make_server()
    good, bad = tmp_path / "good.jpg", tmp_path / "bad.jpg"
    good.write_bytes(b"good photo " * 1000)
    bad.write_bytes(b"bad photo " * 1000)
    with SyncClient(tmp_path / "phone", sleep=FastSleep()) as client:
        client.init(server.url, server.token)
        add_samples(client, server, 1, photos=[bad], prefix="BAD")
        add_samples(client, server, 1, photos=[good], prefix="GOOD")
        bad_row = [m for m in client.outbox.media() if m["bytes"] == bad.stat().st_size][0]
        with open(bad_row["path"], "r+b") as fh:  # flash corruption after the hash was taken
            fh.write(b"X")
        report = client.sync(do_pull=False)
        assert report.error is None and report.media_uploaded == 1
        status = {m["sha256"]: (m["status"], m["error"]) for m in client.outbox.media()}
    assert status[bad_row["sha256"]] == ("failed", "local_file_corrupt")
    assert sorted(s for s, _ in status.values()) == ["done", "failed"]


def test_photos_leave_the_device_once_the_server_stored_their_sample(make_server, tmp_path):
    """A photo the server holds whole, named by a sample it stored, is deleted from the device's
    data folder (the outbox keeps its hash and ``done``); one named only by a conflict stays."""
    server = make_server()
    kept, freed = tmp_path / "kept.jpg", tmp_path / "freed.jpg"
    kept.write_bytes(os.urandom(50_000))
    freed.write_bytes(os.urandom(50_000))
    with SyncClient(tmp_path / "one", sleep=FastSleep()) as one, SyncClient(tmp_path / "two") as two:
        one.init(server.url, server.token)
        two.init(server.url, server.token)
        [clash] = add_samples(two, server, 1, prefix="TWO")
        assert two.sync(do_pull=False).error is None
        add_samples(one, server, 1, photos=[freed], prefix="ONE")
        add_samples(one, server, 1, photos=[kept], prefix="CLASH", sample_id=clash)  # same id, other body
        report = one.sync(do_pull=False)
        assert report.error is None and report.media_uploaded == 2
        statuses = sorted(r["status"] for r in one.outbox.records())
        media = {m["sha256"]: m for m in one.outbox.media()}
    assert statuses == ["applied", "conflict"]
    assert all(m["status"] == "done" for m in media.values())
    freed_row = media[hashlib.sha256(freed.read_bytes()).hexdigest()]
    kept_row = media[hashlib.sha256(kept.read_bytes()).hexdigest()]
    assert not os.path.exists(freed_row["path"]) and os.path.exists(kept_row["path"])

    from fieldsvc.media.models import MediaBlob

    blobs = server.query(lambda s: {b.sha256 for b in s.scalars(select(MediaBlob)) if b.complete})
    assert blobs == {freed_row["sha256"], kept_row["sha256"]}
