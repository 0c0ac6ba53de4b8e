"""Sync pull: scope, cursor pages, deletes on unassignment, late commits, bad cursors; the offline package."""

from __future__ import annotations

import json
import sqlite3

from sqlalchemy import text, update

from fieldsvc.extensions import db
from fieldsvc.sequence import SequenceCounter
from tests.api.test_sync_push import (
    data_for,
    parcels_in,
    push,
    record,
    register_device,
    results,
    village_codes,
)
from tests.helpers import assert_problem


def pull_all(client, headers, cursor=None, limit=1000):
    changes, pages = [], 0
    while True:
        resp = client.get("/api/v1/sync/pull", query_string={"cursor": cursor or "", "limit": limit},
                          headers=headers)
        assert resp.status_code == 200, resp.get_json()
        body = resp.get_json()
        changes += body["changes"]
        cursor, pages = body["cursor"], pages + 1
        if not body["has_more"]:
            return changes, cursor, pages


def by_type(changes):
    out: dict[str, dict[str, dict]] = {}
    for c in changes:
        out.setdefault(c["type"], {})[c["id"]] = c
    return out


def test_first_pull_is_scoped_to_the_assignment(client, official, county, make_account):
    villages = village_codes(county, 2)
    headers, _ = register_device(client, official, make_account, villages=villages)
    mine = parcels_in(county, villages)
    results(push(client, headers, [record(data_for(mine[0], "PL-1"))]))
    other_headers, _ = register_device(client, official, make_account, villages=village_codes(county, 3)[2:])
    theirs = parcels_in(county, village_codes(county, 3)[2:])
    results(push(client, other_headers, [record(data_for(theirs[0], "PL-2"))]))
    changes, _, _ = pull_all(client, headers)
    got = by_type(changes)
    assert set(got["parcel"]) == {f["properties"]["code"] for f in mine}
    assert set(got["region"]) == set(villages) | {v[:9] for v in villages} | {county.county}
    parks = {f["properties"]["farm_park"] for f in mine if f["properties"].get("farm_park")}
    assert set(got.get("farm_park", {})) == parks
    assert set(got["assignment"]) == {f"village:{v}" for v in villages}
    assert [s["data"]["code"] for s in got["sample"].values()] == ["PL-1"]
    seqs = [c["seq"] for c in changes]
    assert seqs == sorted(seqs)
    parcel = next(iter(got["parcel"].values()))
    assert parcel["data"]["type"] == "Feature" and parcel["data"]["geometry"]["type"] == "Polygon"
    # officials do not pull
    assert_problem(client.get("/api/v1/sync/pull", headers=official.headers), 403, "forbidden")


def test_pages_do_not_skip_or_repeat_and_resume_from_cursor(client, official, county, make_account):
    villages = village_codes(county, 3)
    headers, _ = register_device(client, official, make_account, villages=villages)
    mine = parcels_in(county, villages)
    results(push(client, headers, [record(data_for(mine[i % len(mine)], f"PG-{i}")) for i in range(40)]))
    everything, cursor, _ = pull_all(client, headers)
    paged, cursor2, pages = pull_all(client, headers, limit=7)
    assert pages > 5
    assert [(c["type"], c["id"]) for c in paged] == [(c["type"], c["id"]) for c in everything]
    # nothing new: an empty page that keeps the cursor usable
    resp = client.get("/api/v1/sync/pull", query_string={"cursor": cursor2}, headers=headers).get_json()
    assert resp["changes"] == [] and resp["has_more"] is False
    results(push(client, headers, [record(data_for(mine[0], "PG-NEW"))]))
    resp = client.get("/api/v1/sync/pull", query_string={"cursor": cursor2}, headers=headers).get_json()
    assert [c["data"]["code"] for c in resp["changes"]] == ["PG-NEW"]


def test_unassigned_village_comes_down_as_deletes_and_new_one_as_upserts(client, official, county,
                                                                         make_account):
    v1, v2, v3 = village_codes(county, 3)
    headers, device_id = register_device(client, official, make_account, villages=[v1, v2])
    lost = parcels_in(county, [v2])
    results(push(client, headers, [record(data_for(lost[0], "UN-1"))]))
    _, cursor, _ = pull_all(client, headers)
    resp = client.patch(f"/api/v1/devices/{device_id}", json={"villages": [v1, v3]}, headers=official.headers)
    assert resp.status_code == 200
    changes, _, _ = pull_all(client, headers, cursor)
    got = by_type(changes)
    assert got["assignment"][f"village:{v2}"]["deleted"] is True
    assert got["assignment"][f"village:{v3}"]["deleted"] is False
    for f in lost:
        assert got["parcel"][f["properties"]["code"]]["deleted"] is True
    assert [s["deleted"] for s in got["sample"].values()] == [True]
    assert got["region"][v2]["deleted"] is True
    gained = {f["properties"]["code"] for f in parcels_in(county, [v3])}
    assert gained <= {k for k, c in got["parcel"].items() if not c["deleted"]}
    assert got["region"][v3]["deleted"] is False
    # the device can no longer push there
    [res] = results(push(client, headers, [record(data_for(lost[1], "UN-2"))]))
    assert res["code"] == "not_assigned"


def test_a_farm_park_that_appears_in_an_assigned_village_comes_down_on_the_next_pull(client, official, county,
                                                                                    make_account):
    """The device's regions and parks are kept between pulls only for the state of the places they
    were worked out from: a new park and its parcel reach the next page from the old cursor."""
    [village] = village_codes(county, 1)
    headers, _ = register_device(client, official, make_account, villages=[village])
    first, cursor, _ = pull_all(client, headers)
    assert "FP-NEW" not in by_type(first).get("farm_park", {})
    resp = client.post("/api/v1/farm-parks", json={"code": "FP-NEW", "name": "新园区", "county": county.county},
                       headers=official.headers)
    assert resp.status_code == 201, resp.get_json()
    ring = [[115.60, 28.10], [115.601, 28.10], [115.601, 28.101], [115.60, 28.101], [115.60, 28.10]]
    parcel = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
              "properties": {"code": "P-IN-NEW-PARK", "village": village, "land_use": "paddy",
                             "farm_park": "FP-NEW"}}
    resp = client.post("/api/v1/parcels", json={"type": "FeatureCollection", "features": [parcel]},
                       headers=official.headers)
    assert resp.status_code == 201, resp.get_json()
    got = by_type(pull_all(client, headers, cursor)[0])
    assert set(got["farm_park"]) == {"FP-NEW"} and set(got["parcel"]) == {"P-IN-NEW-PARK"}


def test_change_committed_late_by_a_concurrent_writer_is_not_skipped(client, official, county, make_account,
                                                                     app):
    villages = village_codes(county, 1)
    headers, _ = register_device(client, official, make_account, villages=villages)
    parcel = parcels_in(county, villages)[0]["properties"]["code"]
    _, cursor, _ = pull_all(client, headers)
    with app.app_context():
        writer = db.engine.connect()
        tx = writer.begin()  # holds the sequence lock until commit, like a slow request
        seq = writer.execute(update(SequenceCounter).where(SequenceCounter.name == "changes")
                             .values(value=SequenceCounter.value + 1).returning(SequenceCounter.value)).scalar()
        writer.execute(text(
            "INSERT INTO samples (id, code, parcel_code, state, flags, media, content_hash, version, seq, "
            "created_by, received_at, created_at, updated_at, mock_location) VALUES "
            "('00000000-0000-4000-8000-000000000001', 'LATE-1', :p, 'complete', '[]', '[]', 'x', 1, :s, "
            "'test', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, false)"), {"p": parcel, "s": seq})
        mid = client.get("/api/v1/sync/pull", query_string={"cursor": cursor}, headers=headers).get_json()
        assert mid["changes"] == []
        tx.commit()
        writer.close()
    after = client.get("/api/v1/sync/pull", query_string={"cursor": mid["cursor"]}, headers=headers).get_json()
    assert [c["data"]["code"] for c in after["changes"]] == ["LATE-1"]


def test_unusable_cursor_is_410(client, official, county, make_account):
    headers, _ = register_device(client, official, make_account, villages=village_codes(county, 1))
    _, cursor, _ = pull_all(client, headers)
    for bad in ("garbage", cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB"), "2026-11-24T00:00:00Z"):
        assert_problem(client.get("/api/v1/sync/pull", query_string={"cursor": bad}, headers=headers),
                       410, "cursor_expired")


def test_package_is_an_sqlite_file_with_the_assignment_and_its_cursor(client, official, county, make_account,
                                                                       tmp_path):
    villages = village_codes(county, 2)
    headers, device_id = register_device(client, official, make_account, villages=villages)
    mine = parcels_in(county, villages)
    results(push(client, headers, [record(data_for(mine[0], "PK-1"))]))
    resp = client.get("/api/v1/sync/package", headers=headers)
    assert resp.status_code == 200 and resp.mimetype == "application/vnd.sqlite3"
    path = tmp_path / "p.sqlite3"
    path.write_bytes(resp.data)
    with sqlite3.connect(path) as conn:
        parcels = {r[0] for r in conn.execute("SELECT code FROM parcels")}
        assert parcels == {f["properties"]["code"] for f in mine}
        assert json.loads(conn.execute("SELECT geometry FROM parcels LIMIT 1").fetchone()[0])["type"] == "Polygon"
        assert {r[0] for r in conn.execute("SELECT code FROM regions WHERE level='village'")} == set(villages)
        assert {r[0] for r in conn.execute("SELECT id FROM assignments")} == {f"village:{v}" for v in villages}
        assert "paddy" in {r[0] for r in conn.execute("SELECT code FROM land_uses")}
        assert "composite" in {r[0] for r in conn.execute("SELECT code FROM sample_types")}
        assert "location_mismatch" in {r[0] for r in conn.execute("SELECT code FROM flags")}
        assert [r[0] for r in conn.execute("SELECT code FROM samples")] == ["PK-1"]
        meta = dict(conn.execute("SELECT key, value FROM meta"))
    assert meta["device_id"] == device_id
    # the cursor matches the contents: pulling from it gives nothing until something changes
    resp = client.get("/api/v1/sync/pull", query_string={"cursor": meta["cursor"]}, headers=headers).get_json()
    assert resp["changes"] == []
    results(push(client, headers, [record(data_for(mine[1], "PK-2"))]))
    resp = client.get("/api/v1/sync/pull", query_string={"cursor": meta["cursor"]}, headers=headers).get_json()
    assert [c["data"]["code"] for c in resp["changes"]] == ["PK-2"]
