"""The Python device client keeps the planned points its pull brings, and a sample taken on a planned
parcel settles it (locally at once, on the server when it syncs)."""

from __future__ import annotations

import json
import urllib.request

from offline_sync import SyncClient

from .conftest import FastSleep
from .test_device_pull import official_token
from .test_device_push import add_samples, assigned_parcels


def send_plan(server, parcels: list[str]) -> dict:
    req = urllib.request.Request(f"{server.url}/api/v1/devices/{server.device_id}/plan",
                                 json.dumps({"parcels": parcels}).encode(),
                                 {"Content-Type": "application/json",
                                  "Authorization": f"Bearer {official_token(server)}"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 201
        return json.loads(resp.read())


def test_planned_points_come_down_and_a_sample_closes_them(make_server, tmp_path):
    server = make_server()
    codes = [f["properties"]["code"] for f in assigned_parcels(server)][:3]
    ranked = [codes[2], codes[0], codes[1]]
    with SyncClient(tmp_path / "phone", sleep=FastSleep(), pull_limit=2) as client:
        client.init(server.url, server.token)
        assert client.sync().error is None
        assert client.planned() == []
        send_plan(server, ranked)
        assert client.sync().error is None
        planned = client.planned()
        assert [p["parcel"] for p in planned] == ranked and [p["rank"] for p in planned] == [1, 2, 3]
        assert all(p["point"]["lat"] and p["status"] == "open" for p in planned)
        # a sample on the first parcel of the assignment (codes[0], rank 2), recorded offline: settled at once here
        add_samples(client, server, 1, prefix="PLN")
        assert [p["parcel"] for p in client.planned()] == [codes[2], codes[1]]
        assert client.sync().error is None  # the server closes it and the pull says so
        closed = {p["parcel"]: p for p in client.planned(include_closed=True)}
        assert closed[codes[0]]["status"] == "closed" and closed[codes[0]]["closed_by_sample"]
        # a new list replaces the old: the old points are withdrawn (deleted here)
        send_plan(server, [codes[1]])
        assert client.sync().error is None
        assert [(p["plan"], p["parcel"]) for p in client.planned()] == [(2, codes[1])]
        assert {p["plan"] for p in client.planned(include_closed=True)} <= {1, 2}
        assert not any(p["plan"] == 1 and p["status"] == "open" for p in client.planned(include_closed=True))
