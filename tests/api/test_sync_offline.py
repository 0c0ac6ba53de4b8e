"""Three weeks offline: 2,000 samples in batches, then an interrupted, resumed pull while others write."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from fieldsvc.extensions import db
from fieldsvc.samples.models import Sample
from tests.api.test_sync_push import data_for, parcels_in, push, record, register_device, results, village_codes


def test_three_weeks_offline_push_then_resumed_pull_skips_and_repeats_nothing(client, official, county,
                                                                               make_account, app):
    villages = village_codes(county, 4)
    phone, _ = register_device(client, official, make_account, villages=villages)
    teammate, _ = register_device(client, official, make_account, villages=villages)
    parcels = parcels_in(county, villages)
    backlog = [record(data_for(parcels[i % len(parcels)], f"W3-{i:05d}",
                               collected_at=f"2026-11-{1 + i // 100:02d}T08:00:00+08:00")) for i in range(2000)]
    for start in range(0, 2000, 500):
        out = results(push(client, phone, backlog[start:start + 500]))
        assert Counter(r["status"] for r in out) == {"applied": 500}

    pulled: list[str] = []
    cursor, pages, extra = "", 0, 0
    while True:
        resp = client.get("/api/v1/sync/pull", query_string={"cursor": cursor, "limit": 250}, headers=phone)
        assert resp.status_code == 200
        body = resp.get_json()
        pages += 1
        if pages == 3:
            # the response is lost on the way: the phone asks again with the same cursor
            resp = client.get("/api/v1/sync/pull", query_string={"cursor": cursor, "limit": 250}, headers=phone)
            assert resp.get_json()["changes"] == body["changes"]
        pulled += [c["id"] for c in body["changes"] if c["type"] == "sample"]
        cursor = body["cursor"]
        if pages % 2 == 0 and extra < 3:  # a teammate keeps syncing between our pages
            new = [record(data_for(parcels[(extra * 10 + j) % len(parcels)], f"TM-{extra}-{j}"))
                   for j in range(10)]
            results(push(client, teammate, new))
            extra += 1
        if not body["has_more"]:
            break
    with app.app_context():
        stored = set(db.session.scalars(select(Sample.id)))
    assert len(stored) == 2030
    assert Counter(pulled).most_common(1)[0][1] == 1  # nothing repeated
    assert set(pulled) == stored  # nothing skipped
    assert pages >= 9
