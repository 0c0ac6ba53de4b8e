"""Parallel identical pushes against a real threaded server: one row each, never a 500."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
import uuid

import pytest

from tests.api.test_sync_push import count_samples, data_for, parcels_in, record, register_device, village_codes


def _post(url, headers, body):
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={**headers, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def _parallel(n, fn):
    barrier = threading.Barrier(n)
    out: list = [None] * n

    def run(i):
        barrier.wait()
        out[i] = fn(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return out


@pytest.fixture
def batch(client, official, county, make_account):
    villages = village_codes(county, 2)
    headers, _ = register_device(client, official, make_account, villages=villages)
    parcels = parcels_in(county, villages)
    records = [record(data_for(parcels[i % len(parcels)], f"PAR-{i}")) for i in range(20)]
    body = json.dumps({"device_sent_at": "2026-11-24T00:00:00Z", "schema_version": 1, "records": records}).encode()
    return headers, body


def test_five_parallel_pushes_with_one_key_give_one_answer_and_one_row_each(live, batch, app):
    headers, body = batch
    key = str(uuid.uuid4())
    out = _parallel(5, lambda i: _post(f"{live}/api/v1/sync/push", {**headers, "Idempotency-Key": key}, body))
    assert [status for status, _ in out] == [200] * 5, out
    assert len({payload for _, payload in out}) == 1  # byte-for-byte the same response
    statuses = [r["status"] for r in json.loads(out[0][1])["results"]]
    assert statuses == ["applied"] * 20
    assert count_samples(app) == 20


def test_five_parallel_pushes_with_fresh_keys_apply_once_then_duplicate(live, batch, app):
    headers, body = batch
    out = _parallel(5, lambda i: _post(f"{live}/api/v1/sync/push",
                                       {**headers, "Idempotency-Key": str(uuid.uuid4())}, body))
    assert [status for status, _ in out] == [200] * 5, out
    per_record = list(zip(*[[r["status"] for r in json.loads(payload)["results"]] for _, payload in out],
                          strict=True))
    for statuses in per_record:
        assert sorted(statuses) == ["applied"] + ["duplicate"] * 4
    assert count_samples(app) == 20
