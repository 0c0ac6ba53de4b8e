"""Pull into the device's local tables: persisted cursor, interruptions, deletes, expired cursors."""

from __future__ import annotations

import json
import urllib.request

from sqlalchemy import select

from offline_sync import RetryPolicy, SyncClient

from .conftest import FastSleep
from .test_device_push import add_samples

PULL = b"GET /api/v1/sync/pull"


def server_parcels(server, villages) -> set[str]:
    from fieldsvc.places.models import Parcel

    return server.query(lambda s: set(s.scalars(select(Parcel.code).where(Parcel.village_code.in_(villages),
                                                                           Parcel.deleted_at.is_(None)))))


def official_token(server) -> str:
    body = json.dumps({"username": "chief", "password": "pw-chief-secret"}).encode()
    req = urllib.request.Request(server.url + "/api/v1/auth/token", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())["token"]


def test_pull_cut_mid_page_resumes_from_persisted_cursor(make_server, make_proxy, tmp_path):
    server = make_server()
    proxy = make_proxy(server.port)
    proxy.add(PULL, "cut_response", on=3, after=300)  # the third page is cut off mid-body
    with SyncClient(tmp_path / "phone", policy=RetryPolicy(max_attempts=1), pull_limit=4) as client:
        client.init(proxy.url, server.token)
        report = client.sync()
        assert report.error is not None and "pull" in report.error
        cursor = client.outbox.get("pull_cursor")
        assert cursor  # two pages were applied together with their cursor
        partial = set(client.outbox.pulled("parcel"))
    with SyncClient(tmp_path / "phone", sleep=FastSleep(), pull_limit=4) as client:  # the phone restarts
        report = client.sync()
        assert report.error is None
        local = client.outbox.pulled("parcel")
        regions = client.outbox.pulled("region")
        assignments = client.outbox.pulled("assignment")
    expected = server_parcels(server, server.villages)
    assert len(expected) >= 5 and partial < expected
    assert set(local) == expected
    assert all(local[c]["properties"]["village"] in server.villages for c in local)
    assert set(server.villages) <= set(regions)  # with their township and county
    assert {a["code"] for a in assignments.values()} == set(server.villages)
    pulls = proxy.matching(PULL)
    resumed = pulls[3]  # the first request after the restart
    assert f"cursor={cursor}".encode() in resumed.request_line
    assert not any(b"cursor=" not in c.request_line for c in pulls[1:])  # never restarted from scratch


def test_pull_applies_unassignment_as_deletes_and_team_samples(make_server, tmp_path):
    server = make_server()
    with SyncClient(tmp_path / "one", sleep=FastSleep()) as one, SyncClient(tmp_path / "two") as two:
        one.init(server.url, server.token)
        two.init(server.url, server.token)
        mine = add_samples(one, server, 3)
        assert one.sync().error is None
        assert two.sync().error is None
        assert set(two.outbox.pulled("sample")) == set(mine)  # a team sees each other's work
        states = {r["server_state"] for r in one.status()}
        assert states == {"complete"}

        keep, drop = server.villages
        req = urllib.request.Request(f"{server.url}/api/v1/devices/{server.device_id}",
                                     json.dumps({"villages": [keep]}).encode(),
                                     {"Content-Type": "application/json",
                                      "Authorization": f"Bearer {official_token(server)}"}, method="PATCH")
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200
        assert two.sync().error is None
        local = set(two.outbox.pulled("parcel"))
        assert local == server_parcels(server, [keep])
        assert drop not in two.outbox.pulled("region")
        assert set(two.outbox.pulled("assignment")) == {f"village:{keep}"}


def test_expired_cursor_resyncs_from_scratch(make_server, tmp_path):
    server = make_server()
    with SyncClient(tmp_path / "phone", sleep=FastSleep()) as client:
        client.init(server.url, server.token)
        assert client.sync().error is None
        client.outbox.apply_changes([{"type": "parcel", "id": "STALE-1", "version": 1, "deleted": False,
                                      "data": {}}], "not-a-cursor")
        report = client.sync()
        assert report.error is None and report.pull.resets == 1
        assert set(client.outbox.pulled("parcel")) == server_parcels(server, server.villages)
