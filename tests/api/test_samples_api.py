"""Sample reads: filters, pages, and a device's view limited to its assignment."""

from __future__ import annotations

from tests.api.test_sync_push import data_for, parcels_in, push, record, register_device, results, village_codes
from tests.helpers import assert_problem


def test_list_filters_by_parcel_and_state_and_pages(client, official, county, make_account):
    villages = village_codes(county, 2)
    phone, _ = register_device(client, official, make_account, villages=villages)
    parcels = parcels_in(county, villages)
    sha = "b" * 64
    recs = [record(data_for(parcels[0], f"S-{i}")) for i in range(5)]
    recs.append(record(data_for(parcels[1], "S-MEDIA", media=[{"name": "x.jpg", "sha256": sha, "bytes": 10,
                                                               "mime": "image/jpeg"}])))
    results(push(client, phone, recs))
    code = parcels[0]["properties"]["code"]
    page1 = client.get("/api/v1/samples", query_string={"parcel": code, "limit": 3}, headers=official.headers)
    body = page1.get_json()
    assert len(body["items"]) == 3 and body["next_cursor"]
    page2 = client.get("/api/v1/samples", query_string={"parcel": code, "limit": 3, "cursor": body["next_cursor"]},
                       headers=official.headers).get_json()
    assert len(page2["items"]) == 2 and page2["next_cursor"] is None
    assert {s["code"] for s in body["items"] + page2["items"]} == {f"S-{i}" for i in range(5)}
    waiting = client.get("/api/v1/samples", query_string={"state": "awaiting_media"},
                         headers=official.headers).get_json()["items"]
    assert [s["code"] for s in waiting] == ["S-MEDIA"]
    assert_problem(client.get("/api/v1/samples", query_string={"state": "lost"}, headers=official.headers),
                   422, "validation_failed", field="state")


def test_device_sees_only_samples_within_its_assignment(client, official, county, make_account):
    v1, v2 = village_codes(county, 2)
    phone_a, _ = register_device(client, official, make_account, villages=[v1])
    phone_b, _ = register_device(client, official, make_account, villages=[v2])
    a = record(data_for(parcels_in(county, [v1])[0], "A-1"))
    b = record(data_for(parcels_in(county, [v2])[0], "B-1"))
    results(push(client, phone_a, [a]))
    results(push(client, phone_b, [b]))
    listed = client.get("/api/v1/samples", headers=phone_a).get_json()["items"]
    assert [s["id"] for s in listed] == [a["id"]]
    assert client.get(f"/api/v1/samples/{a['id']}", headers=phone_a).status_code == 200
    assert_problem(client.get(f"/api/v1/samples/{b['id']}", headers=phone_a), 404, "not_found")
    # a county-scoped official of another county sees nothing
    other = make_account("official", county="999999")
    assert_problem(client.get(f"/api/v1/samples/{a['id']}", headers=other.headers), 404, "not_found")
    assert client.get("/api/v1/samples", headers=other.headers).get_json()["items"] == []
