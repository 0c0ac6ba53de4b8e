"""Sync pull writes samples from their stored ``data_json``: the same object a read returns, for
new, edited, deleted, hand-written (no stored text) and expired-hold samples, on both engines."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from fieldsvc.audit.models import AuditEvent, EntityVersion
from fieldsvc.extensions import db
from fieldsvc.samples import services as samples_services
from fieldsvc.samples.models import Sample
from tests.api.test_sync_pull import by_type, pull_all
from tests.api.test_sync_push import (
    data_for,
    parcels_in,
    push,
    record,
    register_device,
    results,
    village_codes,
)


@pytest.fixture
def phone(client, official, county, make_account):
    villages = village_codes(county, 2)
    headers, _ = register_device(client, official, make_account, villages=villages)
    return {"headers": headers, "parcels": parcels_in(county, villages)}


def _samples_pulled(client, headers):
    changes, _, _ = pull_all(client, headers)
    return by_type(changes).get("sample", {})


def _read(client, headers, sample_id):
    resp = client.get(f"/api/v1/samples/{sample_id}", headers=headers)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def _push_three(client, phone):
    parcels = phone["parcels"]
    media = [{"name": "p.jpg", "sha256": "a" * 64, "bytes": 10, "mime": "image/jpeg"}]
    recs = [record(data_for(parcels[0], "TX-1", note="田块东侧 ünïcode")),
            record(data_for(parcels[1], "TX-2", media=media, depth_top_cm=2.5)),
            record(data_for(parcels[2], "TX-3"))]
    assert [r["status"] for r in results(push(client, phone["headers"], recs))] == ["applied"] * 3
    edited = record(data_for(parcels[0], "TX-1", note="edited"), rid=recs[0]["id"], base_version=1)
    gone = record(None, rid=recs[2]["id"], base_version=1, deleted=True)
    gone.pop("data")
    out = results(push(client, phone["headers"], [edited, gone]))
    assert [(r["status"], r["version"]) for r in out] == [("applied", 2), ("applied", 2)]
    return [r["id"] for r in recs]


def test_pulled_sample_is_the_sample_a_read_returns(client, phone):
    ids = _push_three(client, phone)
    pulled = _samples_pulled(client, phone["headers"])
    assert set(pulled) == set(ids)
    for sample_id in ids:
        change, read = pulled[sample_id], _read(client, phone["headers"], sample_id)
        assert change["data"] == read
        assert (change["version"], change["deleted"]) == (read["version"], read["deleted"])
    assert pulled[ids[0]]["data"]["note"] == "edited" and pulled[ids[0]]["version"] == 2
    assert pulled[ids[1]]["data"]["media"][0]["sha256"] == "a" * 64
    assert pulled[ids[1]]["data"]["depth_top_cm"] == 2.5
    assert pulled[ids[2]]["deleted"] is True and pulled[ids[2]]["data"]["deleted"] is True


def test_stored_text_is_the_audited_version(client, phone, app):
    ids = _push_three(client, phone)
    with app.app_context():
        for sample_id in ids:
            sample = db.session.get(Sample, sample_id)
            versions = [(v.version, v.data_json) for v in samples_services.versions(sample)]
            assert [v for v, _ in versions] == list(range(1, sample.version + 1))
            created = db.session.scalar(select(AuditEvent.after_digest).where(
                AuditEvent.entity_key == sample_id, AuditEvent.action == "create"))
            assert created == hashlib.sha256(versions[0][1].encode()).hexdigest()
            assert sample.data_json is not None
            if sample.deleted_at is None:  # the edit wrote the new text; a tombstone keeps the data
                assert sample.data_json == versions[-1][1]


def test_first_version_is_stored_when_superseded(client, phone, app):
    """A new sample's version 1 lives on its row; an edit or a delete stores it first, unchanged."""
    ids = _push_three(client, phone)  # [0] edited, [1] completed by its media only, [2] deleted
    with app.app_context():
        stored = {k: [(v.version, v.actor) for v in db.session.scalars(select(EntityVersion).where(
            EntityVersion.entity_type == "sample", EntityVersion.entity_key == k).order_by(EntityVersion.version))]
            for k in ids}
        created = {k: db.session.scalar(select(AuditEvent.after_digest).where(
            AuditEvent.entity_key == k, AuditEvent.action == "create")) for k in ids}
        first = {k: db.session.scalar(select(EntityVersion.data_json).where(
            EntityVersion.entity_key == k, EntityVersion.version == 1)) for k in ids}
    assert stored[ids[1]] == []  # never superseded: no copy of its body
    assert [v for v, _ in stored[ids[0]]] == [1, 2] and [v for v, _ in stored[ids[2]]] == [1, 2]
    for k in (ids[0], ids[2]):  # the copy is the body the create audited, by the account that pushed it
        assert hashlib.sha256(first[k].encode()).hexdigest() == created[k]
        assert stored[k][0][1] == stored[k][1][1]
    listed = client.get(f"/api/v1/samples/{ids[1]}/versions", headers=phone["headers"])
    assert [v["version"] for v in listed.get_json()["items"]] == [1]


def test_sample_without_stored_text_is_built_from_its_columns(client, phone, app):
    ids = _push_three(client, phone)
    before = _samples_pulled(client, phone["headers"])
    with app.app_context():
        db.session.execute(update(Sample).where(Sample.id.in_(ids[:2])).values(data_json=None))
        db.session.commit()
    after = _samples_pulled(client, phone["headers"])
    assert {k: v["data"] for k, v in after.items()} == {k: v["data"] for k, v in before.items()}
    assert after[ids[0]]["data"]["note"] == "edited"


def test_hold_past_its_ttl_pulls_as_needs_review(client, phone, app):
    ids = _push_three(client, phone)
    past = datetime.now(UTC) - timedelta(hours=1)
    with app.app_context():
        db.session.execute(update(Sample).where(Sample.id == ids[1]).values(state="held", held_until=past,
                                                                             flags=["clock_skew"]))
        db.session.commit()
    change = _samples_pulled(client, phone["headers"])[ids[1]]
    assert change["data"]["state"] == "needs_review" and change["data"]["flags"] == ["clock_skew"]
    assert change["data"]["held_until"] == _read(client, phone["headers"], ids[1])["held_until"]
    assert change["data"]["held_until"].endswith("Z")
