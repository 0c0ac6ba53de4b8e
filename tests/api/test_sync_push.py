"""Sync push: identity, idempotency, per-record results, edits and merges, bag codes, holds, flags.

The helpers at the top are shared by the other ``test_sync_*``, ``test_samples_*`` and
``test_media_*`` files.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from fieldsvc.audit.models import AuditEvent
from fieldsvc.extensions import db
from fieldsvc.samples.models import Sample
from tests.helpers import assert_problem

# --- shared helpers -------------------------------------------------------------------------------


def village_codes(county, n=2):
    return [r["code"] for r in county.regions if r["level"] == "village"][:n]


def parcels_in(county, villages):
    return [f for f in county.parcels if f["properties"]["village"] in villages]


def register_device(client, official, make_account, villages=(), parcels=()):
    sampler = make_account("sampler")
    resp = client.post("/api/v1/devices", json={"name": "Phone", "user": sampler.username,
                                                "villages": list(villages), "parcels": list(parcels)},
                       headers=official.headers)
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    return {"Authorization": f"Bearer {body['token']}"}, body["device_id"]


def centre(feature):
    ring = feature["geometry"]["coordinates"][0][:-1]
    return sum(p[1] for p in ring) / len(ring), sum(p[0] for p in ring) / len(ring)


def data_for(feature_or_code, code, **overrides) -> dict[str, Any]:
    if isinstance(feature_or_code, dict):
        lat, lon = centre(feature_or_code)
        parcel = feature_or_code["properties"]["code"]
    else:
        lat, lon, parcel = 28.18, 115.62, feature_or_code
    data = {"code": code, "parcel": parcel, "collected_at": "2026-11-20T08:30:00+08:00",
            "location": {"lat": lat, "lon": lon, "accuracy_m": 4.5, "mock": False},
            "depth_top_cm": 0, "depth_bottom_cm": 20, "sample_type": "composite",
            "land_use_observed": "paddy", "note": None, "media": []}
    data.update(overrides)
    return data


def record(data, rid=None, base_version=None, deleted=False):
    return {"type": "sample", "id": rid or str(uuid.uuid4()), "base_version": base_version, "deleted": deleted,
            "data": data}


def push(client, headers, records, key=None, device_sent_at=None):
    body = {"device_sent_at": device_sent_at or datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "schema_version": 1, "records": records}
    extra = {"Idempotency-Key": key} if key else {}
    return client.post("/api/v1/sync/push", json=body, headers={**headers, **extra})


def results(resp):
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["results"]


@pytest.fixture
def phone(client, official, county, make_account):
    """A device assigned two villages, with those villages' parcels."""
    villages = village_codes(county, 2)
    headers, device_id = register_device(client, official, make_account, villages=villages)
    return {"headers": headers, "device_id": device_id, "parcels": parcels_in(county, villages)}


def count_samples(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Sample))


# --- tests -----------------------------------------------------------------------------------------


def test_push_applies_and_get_returns_data_names(client, phone, official):
    parcel = phone["parcels"][0]
    rec = record(data_for(parcel, "bag-0001"))
    [res] = results(push(client, phone["headers"], [rec]))
    assert res == {"id": rec["id"], "status": "applied", "version": 1, "code": None, "retryable": False,
                   "errors": {}, "state": "complete"}
    body = client.get(f"/api/v1/samples/{rec['id']}", headers=official.headers).get_json()
    assert body["code"] == "BAG-0001" and body["parcel"] == parcel["properties"]["code"]
    assert body["version"] == 1 and body["state"] == "complete" and body["flags"] == []
    assert body["collected_at"] == "2026-11-20T08:30:00+08:00"  # raw, as the phone sent it
    assert body["collected_at_parsed"] == "2026-11-20T00:30:00Z"
    assert body["received_at"].endswith("Z") and abs(body["clock_skew_s"]) < 60
    assert body["location"]["lat"] == rec["data"]["location"]["lat"] and body["location"]["raw"]
    assert {"depth_top_cm", "depth_bottom_cm", "sample_type", "land_use_observed", "note", "media"} <= set(body)


def test_resend_is_duplicate_with_same_version_and_no_new_row(client, phone, app):
    rec = record(data_for(phone["parcels"][0], "B-1"))
    first = results(push(client, phone["headers"], [rec]))[0]
    # the same content spelled differently (string numbers, lower-case code) is the same record
    again = dict(rec, data=dict(rec["data"], code="b-1", depth_bottom_cm="20"))
    second = results(push(client, phone["headers"], [again]))[0]
    assert first["status"] == "applied" and second["status"] == "duplicate"
    assert second["version"] == first["version"] == 1
    assert count_samples(app) == 1


def test_lost_response_replay_same_key_is_byte_identical(client, phone, app):
    records = [record(data_for(p, f"K-{i}")) for i, p in enumerate(phone["parcels"][:5])]
    key = str(uuid.uuid4())
    body = {"device_sent_at": "2026-11-24T01:00:00Z", "schema_version": 1, "records": records}
    first = client.post("/api/v1/sync/push", json=body, headers={**phone["headers"], "Idempotency-Key": key})
    replay = client.post("/api/v1/sync/push", json=body, headers={**phone["headers"], "Idempotency-Key": key})
    assert first.status_code == replay.status_code == 200
    assert replay.data == first.data
    assert replay.headers.get("Idempotent-Replay") == "true"
    # the same records under a new key: all duplicate, nothing added
    fresh = client.post("/api/v1/sync/push", json=body,
                        headers={**phone["headers"], "Idempotency-Key": str(uuid.uuid4())})
    assert [r["status"] for r in fresh.get_json()["results"]] == ["duplicate"] * 5
    assert count_samples(app) == 5


def test_retry_stamped_with_a_new_send_time_is_still_the_same_request(client, phone, app):
    """A phone re-sends a stored batch with this attempt's ``device_sent_at``: a replay, not a reuse."""
    records = [record(data_for(phone["parcels"][0], "T-1"))]
    key = str(uuid.uuid4())
    first = push(client, phone["headers"], records, key=key, device_sent_at="2026-11-24T01:00:00Z")
    later = push(client, phone["headers"], records, key=key, device_sent_at="2026-11-24T07:30:00Z")
    assert later.status_code == 200 and later.data == first.data
    assert count_samples(app) == 1


def test_retry_is_recognised_by_content_not_bytes(client, phone, app):
    """Re-serialised with other key order and spacing, ``28,1``-style decimals: still the same request;
    a rejected record that changed is another request."""
    rec = record(data_for(phone["parcels"][0], "B-1"))
    bad = record(data_for(phone["parcels"][1], "B-2"))
    bad["data"]["depth_top_cm"] = "deep"
    key = str(uuid.uuid4())
    first = push(client, phone["headers"], [rec, bad], key=key)
    again = dict(rec, data={k: rec["data"][k] for k in reversed(list(rec["data"]))})
    again["data"]["location"] = dict(rec["data"]["location"], lat=str(rec["data"]["location"]["lat"]).replace(".", ","))
    text = json.dumps({"records": [again, bad], "schema_version": 1}, indent=2)
    replay = client.post("/api/v1/sync/push", data=text, content_type="application/json",
                         headers={**phone["headers"], "Idempotency-Key": key})
    assert replay.status_code == 200 and replay.data == first.data
    assert replay.headers.get("Idempotent-Replay") == "true"
    other_bad = dict(bad, data=dict(bad["data"], depth_top_cm="deeper"))
    assert_problem(push(client, phone["headers"], [rec, other_bad], key=key), 422, "idempotency_key_reused",
                   field="Idempotency-Key")
    assert count_samples(app) == 1


def test_same_key_with_other_body_is_422(client, phone):
    key = str(uuid.uuid4())
    results(push(client, phone["headers"], [record(data_for(phone["parcels"][0], "X-1"))], key=key))
    resp = push(client, phone["headers"], [record(data_for(phone["parcels"][0], "X-2"))], key=key)
    assert_problem(resp, 422, "idempotency_key_reused", field="Idempotency-Key")
    assert_problem(push(client, phone["headers"], [], key="not-a-uuid"), 422, "validation_failed",
                   field="Idempotency-Key")


def test_one_poison_record_in_200_never_blocks_the_others(client, phone, app):
    parcels = phone["parcels"]
    records = [record(data_for(parcels[i % len(parcels)], f"P-{i:04d}")) for i in range(200)]
    records[117]["data"]["depth_top_cm"] = "deep"
    records[117]["data"]["location"]["lat"] = 123
    results_ = results(push(client, phone["headers"], records))
    bad = results_[117]
    assert bad["status"] == "rejected" and bad["code"] == "validation_failed" and bad["retryable"] is False
    assert set(bad["errors"]) >= {"data.depth_top_cm", "data.location.lat"}
    assert [r["status"] for i, r in enumerate(results_) if i != 117] == ["applied"] * 199
    assert count_samples(app) == 199


def test_database_error_in_one_record_rolls_back_only_that_record(client, phone, app, monkeypatch):
    """A record the bulk insert cannot take is retried alone in a savepoint; the others stay."""
    from fieldsvc.samples import services as samples

    real = samples.new_row

    def broken(sample_id, clean, *args, **kwargs):
        row = real(sample_id, clean, *args, **kwargs)
        if clean["code"] == "BAD-DB":
            row["created_by"] = None  # NOT NULL: an IntegrityError from the database
        return row

    monkeypatch.setattr(samples, "new_row", broken)
    parcels = phone["parcels"]
    records = [record(data_for(parcels[0], "OK-1")), record(data_for(parcels[1], "BAD-DB")),
               record(data_for(parcels[2], "OK-2"))]
    out = results(push(client, phone["headers"], records))
    assert [r["status"] for r in out] == ["applied", "rejected", "applied"]
    assert out[1]["code"] == "integrity_error"
    assert count_samples(app) == 2


def test_busy_database_is_503_and_nothing_half_applied(client, phone, app, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from fieldsvc.sync import push as push_module

    calls = {"n": 0}
    real = push_module._judge

    def busy(it, batch):
        calls["n"] += 1
        raise OperationalError("UPDATE samples", {}, Exception("database is locked"))

    existing = record(data_for(phone["parcels"][0], "E-1"))
    results(push(client, phone["headers"], [existing]))
    monkeypatch.setattr(push_module, "_judge", busy)
    edit = dict(existing, base_version=1, data=dict(existing["data"], note="edited"))
    resp = push(client, phone["headers"], [record(data_for(phone["parcels"][1], "NEW-1")), edit])
    assert_problem(resp, 503, "unavailable")
    assert resp.headers["Retry-After"] and calls["n"] == 1
    monkeypatch.setattr(push_module, "_judge", real)
    assert count_samples(app) == 1  # the new record of the failed request was rolled back too


def test_same_id_other_content_without_base_is_conflict_with_both_bodies(client, phone, official):
    rec = record(data_for(phone["parcels"][0], "C-1"))
    results(push(client, phone["headers"], [rec]))
    other = dict(rec, data=dict(rec["data"], depth_bottom_cm=30))
    [res] = results(push(client, phone["headers"], [other]))
    assert res["status"] == "conflict" and res["code"] == "id_conflict" and res["version"] == 1
    items = client.get("/api/v1/conflicts", query_string={"record": rec["id"]}, headers=official.headers
                       ).get_json()["items"]
    assert len(items) == 1
    c = items[0]
    assert c["kind"] == "id_conflict" and c["status"] == "open" and c["hard_fields"] == ["depth_bottom_cm"]
    assert c["server_body"]["depth_bottom_cm"] == 20 and c["incoming_body"]["depth_bottom_cm"] == 30
    # the stored sample is untouched, and a resend of the clash keeps one conflict
    assert client.get(f"/api/v1/samples/{rec['id']}", headers=official.headers).get_json()["depth_bottom_cm"] == 20
    results(push(client, phone["headers"], [other]))
    assert len(client.get("/api/v1/conflicts", query_string={"record": rec["id"]},
                          headers=official.headers).get_json()["items"]) == 1


def test_edit_with_current_base_makes_new_version(client, phone, official):
    rec = record(data_for(phone["parcels"][0], "V-1"))
    results(push(client, phone["headers"], [rec]))
    [res] = results(push(client, phone["headers"], [dict(rec, base_version=1,
                                                         data=dict(rec["data"], note="wet soil"))]))
    assert res["status"] == "applied" and res["version"] == 2
    body = client.get(f"/api/v1/samples/{rec['id']}", headers=official.headers).get_json()
    assert body["note"] == "wet soil" and body["version"] == 2
    versions = client.get(f"/api/v1/samples/{rec['id']}/versions", headers=official.headers).get_json()["items"]
    assert [v["version"] for v in versions] == [1, 2] and versions[0]["data"]["note"] is None


def _two_phones_edit(client, phone, first_change, second_change):
    rec = record(data_for(phone["parcels"][0], "M-1"))
    results(push(client, phone["headers"], [rec]))
    a = results(push(client, phone["headers"], [dict(rec, base_version=1, data=dict(rec["data"], **first_change))]))
    b = results(push(client, phone["headers"], [dict(rec, base_version=1,
                                                     data=dict(rec["data"], **second_change))]))
    return rec, a[0], b[0]


def test_stale_base_different_fields_merges_and_notes_soft_conflict(client, phone, official):
    rec, a, b = _two_phones_edit(client, phone, {"note": "from A"}, {"depth_bottom_cm": 25})
    assert a["status"] == "applied" and b["status"] == "merged" and b["version"] == 3
    assert b["soft_fields"] == ["depth_bottom_cm", "note"]
    body = client.get(f"/api/v1/samples/{rec['id']}", headers=official.headers).get_json()
    assert body["note"] == "from A" and body["depth_bottom_cm"] == 25
    soft = client.get("/api/v1/conflicts", query_string={"record": rec["id"], "kind": "soft"},
                      headers=official.headers).get_json()["items"]
    assert len(soft) == 1 and soft[0]["status"] == "resolved"


def test_stale_base_same_field_is_conflict_with_provisional_value_then_resolved(client, phone, official):
    rec, a, b = _two_phones_edit(client, phone, {"note": "from A", "depth_bottom_cm": 25},
                                 {"note": "from B"})
    assert b["status"] == "conflict" and b["code"] == "edit_conflict" and b["hard_fields"] == ["note"]
    body = client.get(f"/api/v1/samples/{rec['id']}", headers=official.headers).get_json()
    assert body["note"] == "from A"  # provisional: the server's value for the clashing field
    [c] = client.get("/api/v1/conflicts", query_string={"record": rec["id"], "status": "open"},
                     headers=official.headers).get_json()["items"]
    assert c["provisional"] == {"note": "from A"} and c["incoming_body"]["note"] == "from B"
    resp = client.post(f"/api/v1/conflicts/{c['id']}/resolve", json={"resolution": "take_incoming"},
                       headers=official.headers)
    assert resp.status_code == 200 and resp.get_json()["status"] == "resolved"
    body = client.get(f"/api/v1/samples/{rec['id']}", headers=official.headers).get_json()
    assert body["note"] == "from B" and body["depth_bottom_cm"] == 25 and body["version"] == 3
    assert_problem(client.post(f"/api/v1/conflicts/{c['id']}/resolve", json={"resolution": "keep_server"},
                               headers=official.headers), 409, "conflict_resolved")


def test_resolve_merge_takes_given_values_and_is_audited(client, phone, official, app):
    rec, _, b = _two_phones_edit(client, phone, {"note": "A"}, {"note": "B"})
    cid = b["conflict_id"]
    bad = client.post(f"/api/v1/conflicts/{cid}/resolve", json={"resolution": "merge",
                                                                 "values": {"depth_top_cm": "x"}},
                      headers=official.headers)
    assert_problem(bad, 422, "validation_failed", field="values.depth_top_cm")
    assert_problem(client.post(f"/api/v1/conflicts/{cid}/resolve", json={"resolution": "pick"},
                               headers=official.headers), 422, "validation_failed", field="resolution")
    ok = client.post(f"/api/v1/conflicts/{cid}/resolve", json={"resolution": "merge", "values": {"note": "A+B"}},
                     headers=official.headers)
    assert ok.status_code == 200 and ok.get_json()["resolved_version"] == 3
    assert client.get(f"/api/v1/samples/{rec['id']}", headers=official.headers).get_json()["note"] == "A+B"
    with app.app_context():
        actions = [e.action for e in db.session.scalars(select(AuditEvent).where(
            AuditEvent.entity_key.in_([rec["id"], str(cid)])).order_by(AuditEvent.id))]
    assert actions[:2] == ["create", "update"] and "resolve_merge" in actions and actions[-1] == "resolve"
    # a device may not list or resolve conflicts
    assert_problem(client.get("/api/v1/conflicts", headers=phone["headers"]), 403, "forbidden")


def test_same_bag_code_on_another_id_is_conflict_never_merged(client, phone, official, app):
    first = record(data_for(phone["parcels"][0], "SAME-1"))
    second = record(data_for(phone["parcels"][1], "same-1"))
    out = results(push(client, phone["headers"], [first, second]))
    assert out[0]["status"] == "applied"
    assert out[1]["status"] == "conflict" and out[1]["code"] == "duplicate_sample_code"
    assert "data.code" in out[1]["errors"]
    assert count_samples(app) == 1
    [c] = client.get("/api/v1/conflicts", query_string={"record": second["id"]},
                     headers=official.headers).get_json()["items"]
    assert c["server_record_id"] == first["id"] and c["incoming_body"]["parcel"] == second["data"]["parcel"]
    # resolved by giving the second bag its real code: the sample is created
    resp = client.post(f"/api/v1/conflicts/{c['id']}/resolve",
                       json={"resolution": "merge", "values": {"code": "SAME-2"}}, headers=official.headers)
    assert resp.status_code == 200, resp.get_json()
    assert client.get(f"/api/v1/samples/{second['id']}", headers=official.headers).get_json()["code"] == "SAME-2"


def test_batch_mixing_new_records_with_a_stored_id_and_a_stored_code_judges_each(client, phone, app):
    """The bulk insert leaves out the resend and the code clash; only the new ones count as in."""
    parcels = phone["parcels"]
    stored = record(data_for(parcels[0], "MIX-0"))
    assert results(push(client, phone["headers"], [stored]))[0]["status"] == "applied"
    fresh = [record(data_for(parcels[i], f"MIX-{i}")) for i in (1, 2)]
    clash = record(data_for(parcels[3], "MIX-0"))
    out = results(push(client, phone["headers"], [fresh[0], stored, clash, fresh[1]]))
    assert [r["status"] for r in out] == ["applied", "duplicate", "conflict", "applied"]
    assert out[2]["code"] == "duplicate_sample_code"
    assert count_samples(app) == 3
    # a batch that goes in whole answers every record applied, at version 1
    more = [record(data_for(parcels[i], f"MIX-{i}")) for i in (4, 5, 6)]
    assert [(r["status"], r["version"]) for r in results(push(client, phone["headers"], more))] == [("applied", 1)] * 3
    assert count_samples(app) == 6


def test_deleted_sample_resent_by_old_device_stays_deleted(client, phone, official):
    rec = record(data_for(phone["parcels"][0], "D-1"))
    results(push(client, phone["headers"], [rec]))
    [gone] = results(push(client, phone["headers"], [record(None, rec["id"], base_version=1, deleted=True)]))
    assert gone["status"] == "applied" and gone["version"] == 2
    [old] = results(push(client, phone["headers"], [rec]))
    assert old["status"] == "rejected" and old["code"] == "deleted" and old["retryable"] is False
    body = client.get(f"/api/v1/samples/{rec['id']}", headers=official.headers).get_json()
    assert body["deleted"] is True and body["version"] == 2
    listed = client.get("/api/v1/samples", headers=official.headers).get_json()["items"]
    assert rec["id"] not in [s["id"] for s in listed]


def test_unknown_parcel_is_held_then_linked_when_parcel_arrives(client, phone, official, county):
    village = village_codes(county, 1)[0]
    code = f"{village}-9001"
    ring = [[115.6, 28.1], [115.601, 28.1], [115.601, 28.101], [115.6, 28.101], [115.6, 28.1]]
    data = data_for(code, "H-1", location={"lat": 28.1005, "lon": 115.6005, "accuracy_m": 3, "mock": False})
    rec = record(data)
    [res] = results(push(client, phone["headers"], [rec]))
    assert res["status"] == "held" and res["code"] == "unknown_parcel" and res["held_until"]
    held = client.get("/api/v1/samples", query_string={"state": "held"}, headers=official.headers).get_json()
    assert [s["id"] for s in held["items"]] == [rec["id"]]
    fc = {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {
        "type": "Polygon", "coordinates": [ring]}, "properties": {"code": code, "village": village,
                                                               "land_use": "paddy"}}]}
    assert client.post("/api/v1/parcels", json=fc, headers=official.headers).status_code == 201
    body = client.get(f"/api/v1/samples/{rec['id']}", headers=official.headers).get_json()
    assert body["state"] == "complete" and body["held_until"] is None and body["flags"] == []


def test_official_moves_a_held_sample_to_the_parcel_it_was_taken_on(client, phone, official, make_account, app):
    """A mistyped parcel code: the sample waits held; an official re-files it on the real parcel
    (a new version, the location checked against that parcel); the phone's version 1 is kept."""
    real, far = phone["parcels"][0], phone["parcels"][-1]
    rec = record(data_for(real, "MV-1", parcel=real["properties"]["code"] + "X"))  # the typo
    assert results(push(client, phone["headers"], [rec]))[0]["status"] == "held"
    url = f"/api/v1/samples/{rec['id']}/parcel"
    assert_problem(client.post(url, json={"parcel": "NO-SUCH-PARCEL"}, headers=official.headers), 422,
                   "validation_failed", field="parcel")
    assert_problem(client.post(url, json={}, headers=official.headers), 422, "validation_failed", field="parcel")
    assert_problem(client.post(url, json={"parcel": real["properties"]["code"]}, headers=phone["headers"]), 403,
                   "forbidden")
    assert client.get(f"/api/v1/samples/{rec['id']}", headers=official.headers).get_json()["state"] == "held"
    moved = client.post(url, json={"parcel": real["properties"]["code"]}, headers=official.headers)
    assert moved.status_code == 200, moved.get_json()
    body = moved.get_json()
    assert body["parcel"] == real["properties"]["code"] and body["state"] == "complete"
    assert body["version"] == 2 and body["flags"] == [] and body["held_until"] is None
    versions = client.get(f"/api/v1/samples/{rec['id']}/versions", headers=official.headers).get_json()["items"]
    assert [v["data"]["parcel"] for v in versions] == [rec["data"]["parcel"], real["properties"]["code"]]
    with app.app_context():
        actions = [e.action for e in db.session.scalars(select(AuditEvent).where(
            AuditEvent.entity_key == rec["id"]).order_by(AuditEvent.id))]
    assert actions == ["create", "move_parcel"]
    # no longer held: a second move is refused, and the phone sees version 2 on its next pull
    assert_problem(client.post(url, json={"parcel": far["properties"]["code"]}, headers=official.headers), 409,
                   "not_held")
    pulled = client.get("/api/v1/sync/pull", headers=phone["headers"]).get_json()["changes"]
    [mine] = [c for c in pulled if c["id"] == rec["id"]]
    assert mine["version"] == 2 and mine["data"]["parcel"] == real["properties"]["code"]
    # a sample re-filed on a parcel its fix lies far from is flagged, as a push would be
    other = record(data_for(real, "MV-2", parcel="TYPO-2"))
    results(push(client, phone["headers"], [other]))
    body = client.post(f"/api/v1/samples/{other['id']}/parcel", json={"parcel": far["properties"]["code"]},
                       headers=official.headers).get_json()
    assert "location_mismatch" in body["flags"] and body["parcel"] == far["properties"]["code"]


def test_held_sample_past_ttl_reads_needs_review_and_housekeeping_stores_it(client, phone, official, app):
    rec = record(data_for("NOWHERE-1", "T-1"))
    results(push(client, phone["headers"], [rec]))
    with app.app_context():
        sample = db.session.get(Sample, rec["id"])
        sample.held_until = datetime.now(UTC) - timedelta(seconds=1)
        db.session.commit()
    assert client.get(f"/api/v1/samples/{rec['id']}", headers=official.headers).get_json()["state"] == "needs_review"
    listed = client.get("/api/v1/samples", query_string={"state": "needs_review"}, headers=official.headers)
    assert [s["id"] for s in listed.get_json()["items"]] == [rec["id"]]
    out = app.test_cli_runner().invoke(args=["housekeeping"])
    assert out.exit_code == 0 and "held_to_needs_review=1" in out.output, out.output
    with app.app_context():
        assert db.session.get(Sample, rec["id"]).state == "needs_review"


def test_parcel_outside_assignment_is_not_assigned(client, phone, county):
    mine = {p["properties"]["code"] for p in phone["parcels"]}
    other = next(f for f in county.parcels if f["properties"]["code"] not in mine)
    [res] = results(push(client, phone["headers"], [record(data_for(other, "NA-1"))]))
    assert res["status"] == "rejected" and res["code"] == "not_assigned" and "data.parcel" in res["errors"]


def test_location_and_clock_flags_keep_raw_values(client, phone, official):
    parcel = phone["parcels"][0]
    lat, lon = centre(parcel)
    far = record(data_for(parcel, "F-1", location={"lat": lat + 0.01, "lon": lon, "accuracy_m": "5,5",
                                                   "mock": True}))
    island = record(data_for(parcel, "F-2", location={"lat": 0, "lon": 0, "accuracy_m": 80}))
    old_phone = record(data_for(parcel, "F-3", collected_at="1980-01-01T00:00:00Z"))
    skewed = "2026-01-01T00:00:00Z"  # the phone's clock is months behind
    out = results(push(client, phone["headers"], [far, island, old_phone], device_sent_at=skewed))
    assert [r["status"] for r in out] == ["applied"] * 3
    got = {r["id"]: client.get(f"/api/v1/samples/{r['id']}", headers=official.headers).get_json()
           for r in (far, island, old_phone)}
    assert got[far["id"]]["flags"] == ["mock_location", "location_mismatch", "clock_skew"]
    assert got[far["id"]]["location"]["raw"]["accuracy_m"] == "5,5"
    assert got[far["id"]]["location"]["accuracy_m"] == 5.5
    assert got[island["id"]]["flags"][:3] == ["null_island", "low_accuracy", "location_mismatch"]
    assert "clock_skew" in got[old_phone["id"]]["flags"]
    assert got[far["id"]]["clock_skew_s"] < -1_000_000


def test_envelope_errors_name_the_field(client, phone, app):
    too_many = [record(data_for(phone["parcels"][0], f"Z-{i}")) for i in range(app.config["MAX_BATCH_RECORDS"] + 1)]
    assert_problem(push(client, phone["headers"], too_many), 422, "validation_failed", field="records")
    resp = client.post("/api/v1/sync/push", json={"records": [], "schema_version": 9}, headers=phone["headers"])
    assert_problem(resp, 422, "validation_failed", field="schema_version")
    out = results(push(client, phone["headers"], [{"id": "nope", "data": {}}, "x", {"type": "parcel",
                                                                                   "id": str(uuid.uuid4())}]))
    assert [r["code"] for r in out] == ["validation_failed", "validation_failed", "unsupported_type"]
    assert "id" in out[0]["errors"]


def test_push_over_max_request_bytes_is_413_before_reading(client, phone, app):
    from tests.api.test_http import ExplodingStream

    size = app.config["MAX_REQUEST_BYTES"] + 1
    resp = client.post("/api/v1/sync/push", content_type="application/json", headers=phone["headers"],
                       environ_overrides={"CONTENT_LENGTH": str(size), "wsgi.input": ExplodingStream()})
    body = assert_problem(resp, 413, "payload_too_large")
    assert body["details"]["max_bytes"] == app.config["MAX_REQUEST_BYTES"]


def test_only_samplers_push_and_config_advertises_limits(client, phone, official, app):
    assert_problem(push(client, official.headers, []), 403, "forbidden")
    cfg = client.get("/api/v1/sync/config", headers=phone["headers"]).get_json()
    assert cfg["max_request_bytes"] == app.config["MAX_REQUEST_BYTES"]
    assert cfg["preferred_chunk_bytes"] == 1024 * 1024 < cfg["max_request_bytes"]
    assert cfg["max_batch_records"] == app.config["MAX_BATCH_RECORDS"] and cfg["hold_ttl_s"] == 5 * 24 * 3600
    assert cfg["server_time"].endswith("Z")
