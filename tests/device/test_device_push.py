"""Push from the device client against a real server: batching, lost responses, poison records."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from offline_sync import RetryPolicy, SyncClient
from offline_sync.client import plan_batch

from .conftest import FastSleep

PUSH = b"POST /api/v1/sync/push"


def assigned_parcels(server):
    return [f for f in server.county.parcels if f["properties"]["village"] in server.villages]


def add_samples(client: SyncClient, server, n: int, prefix: str = "BAG", **overrides) -> list[str]:
    parcels = assigned_parcels(server)
    ids = []
    for i in range(n):
        f = parcels[i % len(parcels)]
        ring = f["geometry"]["coordinates"][0][:-1]
        kw = {"parcel": f["properties"]["code"], "code": f"{prefix}{i:05d}",
              "lat": sum(p[1] for p in ring) / len(ring), "lon": sum(p[0] for p in ring) / len(ring),
              "accuracy_m": 4.0, "depth_top_cm": 0, "depth_bottom_cm": 20,
              "collected_at": "2026-11-20T08:30:00+08:00"}
        kw.update(overrides)
        ids.append(client.add_sample(**kw))
    return ids


def server_samples(server, ids=None) -> dict[str, str]:
    from fieldsvc.samples.models import Sample

    def q(session):
        stmt = select(Sample.id, Sample.code)
        if ids is not None:
            stmt = stmt.where(Sample.id.in_(list(ids)))
        return dict(session.execute(stmt).all())

    return server.query(q)


def sample_count(server) -> int:
    from fieldsvc.samples.models import Sample

    return server.query(lambda s: s.scalar(select(func.count()).select_from(Sample)))


def test_lost_push_response_is_retried_with_same_key_and_stored_once(make_server, make_proxy, tmp_path):
    server = make_server()
    proxy = make_proxy(server.port)
    proxy.add(PUSH, "drop_response", on=1)  # the server applies the batch; the phone never hears
    sleep = FastSleep()
    with SyncClient(tmp_path / "phone", sleep=sleep) as client:
        client.init(proxy.url, server.token, server.device_id)
        ids = add_samples(client, server, 30)
        report = client.sync(do_pull=False)

        assert report.error is None
        pushes = proxy.matching(PUSH)
        assert len(pushes) == 2
        keys = {c.header("Idempotency-Key") for c in pushes}
        assert len(keys) == 1 and None not in keys  # the retry reused the persisted key
        assert len(sleep.waits) == 1  # one backoff between the lost answer and the retry
        # The replayed answer says "applied" (a fresh key would have said "duplicate").
        assert {r["status"] for r in client.status()} == {"applied"}
        assert client.outbox.open_batches() == []
    stored = server_samples(server)
    assert sorted(stored) == sorted(ids) and len(set(stored.values())) == 30


def test_batch_is_persisted_before_sending_and_resent_after_restart(make_server, make_proxy, tmp_path):
    """The phone dies before the answer: after a restart the same body goes out under the same key."""
    server = make_server()
    proxy = make_proxy(server.port)
    proxy.add(PUSH, "drop_response", on=1)
    with SyncClient(tmp_path / "phone", policy=RetryPolicy(max_attempts=1)) as client:
        client.init(proxy.url, server.token)
        ids = add_samples(client, server, 5)
        report = client.sync(do_pull=False)
        assert report.error is not None
        assert {r["status"] for r in client.status()} == {"sent"}
        [batch] = client.outbox.open_batches()
    with SyncClient(tmp_path / "phone", sleep=FastSleep()) as client:  # a restart
        report = client.sync(do_pull=False)
        assert report.error is None
        assert {r["status"] for r in client.status()} == {"applied"}
    pushes = proxy.matching(PUSH)
    assert [c.header("Idempotency-Key") for c in pushes] == [batch["key"]] * 2
    assert sorted(server_samples(server)) == sorted(ids)


def test_one_poison_record_in_200_is_rejected_and_199_applied(make_server, make_proxy, tmp_path):
    server = make_server(MAX_BATCH_RECORDS=50)
    proxy = make_proxy(server.port)
    with SyncClient(tmp_path / "phone", sleep=FastSleep()) as client:
        client.init(proxy.url, server.token)
        ids = add_samples(client, server, 100, prefix="A")
        poison = add_samples(client, server, 1, prefix="POISON", depth_top_cm=-5)[0]
        ids += add_samples(client, server, 99, prefix="B")
        report = client.sync(do_pull=False)

        assert report.error is None
        assert len(proxy.matching(PUSH)) == 4  # 200 records in batches of the advertised 50
        assert report.results == {"applied": 199, "rejected": 1}
        bad = client.outbox.record(poison)
        assert bad["status"] == "rejected" and bad["code"] == "validation_failed"
        assert "data.depth_top_cm" in json.loads(bad["errors"])
        # The queue is not blocked: nothing is resent, and a new record goes through.
        later = add_samples(client, server, 1, prefix="LATER")[0]
        report = client.sync(do_pull=False)
        assert report.results == {"applied": 1}
        assert client.outbox.record(later)["status"] == "applied"
        assert len(proxy.matching(PUSH)) == 5
    stored = server_samples(server)
    assert sorted(stored) == sorted(ids + [later]) and poison not in stored


def test_batches_respect_the_advertised_request_size(make_server, make_proxy, tmp_path):
    server = make_server(MAX_REQUEST_BYTES=20_000)
    proxy = make_proxy(server.port)
    with SyncClient(tmp_path / "phone", sleep=FastSleep()) as client:
        client.init(proxy.url, server.token)
        ids = add_samples(client, server, 40, note="n" * 1500)
        huge = add_samples(client, server, 1, prefix="HUGE", note="x" * 30_000)[0]
        report = client.sync(do_pull=False)
        assert report.error is None
        pushes = proxy.matching(PUSH)
        assert len(pushes) >= 4 and all(c.up < 20_000 for c in pushes)
        assert client.outbox.record(huge)["code"] == "payload_too_large"
    assert sorted(server_samples(server)) == sorted(ids)


def test_retry_after_on_503_is_honoured(make_server, make_proxy, tmp_path):
    server = make_server()
    proxy = make_proxy(server.port)
    busy = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 7\r\n"
            b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
    proxy.add(PUSH, "respond", on={1, 2}, raw=busy)
    sleep = FastSleep()
    with SyncClient(tmp_path / "phone", sleep=sleep) as client:
        client.init(proxy.url, server.token)
        ids = add_samples(client, server, 3)
        report = client.sync(do_pull=False)
        assert report.error is None
    assert len(sleep.waits) == 2 and all(w >= 7 for w in sleep.waits)
    assert len(proxy.matching(PUSH)) == 3
    assert sorted(server_samples(server)) == sorted(ids)


def test_backoff_gives_up_and_keeps_the_queue(make_server, make_proxy, tmp_path):
    server = make_server()
    proxy = make_proxy(server.port)
    proxy.add(PUSH, "drop_response", on=set(range(1, 5)))
    sleep = FastSleep()
    with SyncClient(tmp_path / "phone", sleep=sleep, policy=RetryPolicy(max_attempts=4, base_s=1, cap_s=8)) as client:
        client.init(proxy.url, server.token)
        add_samples(client, server, 2)
        report = client.sync(do_pull=False)
        assert report.error is not None and "push" in report.error
        assert len(sleep.waits) == 3 and all(0 <= w <= 2 ** i for i, w in enumerate(sleep.waits))
        assert {r["status"] for r in client.status()} == {"sent"}
        report = client.sync(do_pull=False)
        assert report.error is None and {r["status"] for r in client.status()} == {"applied"}
    assert len({c.header("Idempotency-Key") for c in proxy.matching(PUSH)}) == 1
    assert sample_count(server) == 2


def test_revoked_token_stops_sync_and_keeps_records_pending(make_server, tmp_path):
    server = make_server()
    with SyncClient(tmp_path / "phone", sleep=FastSleep()) as client:
        client.init(server.url, "fsd_not-a-real-token")
        add_samples(client, server, 2)
        report = client.sync()
        assert report.error is not None and "401" in report.error
        assert "fsd_not-a-real-token" not in report.error
        assert {r["status"] for r in client.status()} == {"pending"}


def test_plan_batch_counts_and_bytes():
    records = [(str(i), b"x" * 100) for i in range(10)] + [("big", b"y" * 5000)]
    chosen, too_big = plan_batch(records, max_records=4, max_bytes=10_000)
    assert chosen == [0, 1, 2, 3] and too_big == []
    chosen, too_big = plan_batch(records, max_records=100, max_bytes=1_200)
    assert chosen == [0, 1, 2, 3, 4] and too_big == []  # 512 envelope + 5 × 101 fits 90 % of 1200
    assert plan_batch(records[10:] + records[:2], max_records=100, max_bytes=1_200) == ([1, 2], [0])
