"""A server SIGKILLed while a push is in flight, restarted on the same database: 0 lost, 0 duplicated."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from offline_sync import RetryPolicy, SyncClient

from .conftest import free_port
from .test_device_push import PUSH, add_samples, server_samples


@pytest.mark.slow
def test_server_killed_mid_push_then_restarted_loses_and_duplicates_nothing(make_server, make_proxy, tmp_path):
    server = make_server(start=False, MAX_BATCH_RECORDS=50)
    port = free_port()
    server.start_process(port)
    proxy = make_proxy(port)
    killed = threading.Event()
    restarted: list[float] = []

    def kill() -> None:
        server.kill_process()
        killed.set()

    # 1st push: killed while the body is still arriving (nothing committed).
    proxy.add(PUSH, "cut_request", on=1, after=6_000, callback=kill)
    # 3rd push (the second batch's first try): killed after it committed, before the answer left.
    proxy.add(PUSH, "drop_response", on=3, callback=kill)

    def restarter() -> None:
        for _ in range(2):
            if not killed.wait(timeout=60):
                return
            killed.clear()
            server.start_process(port)  # same database, same port
            restarted.append(1)

    thread = threading.Thread(target=restarter)
    thread.start()
    try:
        with SyncClient(tmp_path / "phone", policy=RetryPolicy(max_attempts=60, base_s=0.05, cap_s=0.25)) as client:
            client.init(proxy.url, server.token)
            ids = add_samples(client, server, 150)
            report = client.sync(do_pull=False)
            statuses = {r["status"] for r in client.status()}
    finally:
        thread.join(timeout=90)
    assert report.error is None, report.error
    assert len(restarted) == 2
    # Every record answered "applied": the second batch's retry got the stored answer, not "duplicate".
    assert statuses == {"applied"}
    pushes = [c for c in proxy.matching(PUSH) if c.fault != "server_down"]
    assert [c.fault for c in pushes] == ["cut_request", None, "drop_response", None, None]
    assert pushes[0].header("Idempotency-Key") == pushes[1].header("Idempotency-Key")
    assert pushes[2].header("Idempotency-Key") == pushes[3].header("Idempotency-Key")
    stored = server_samples(server)
    assert sorted(stored) == sorted(ids)  # 0 lost
    assert len(set(stored.values())) == 150  # 0 duplicated (ids are unique by key; codes too)

    from fieldsvc.audit.models import AuditEvent

    creates = server.query(lambda s: s.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.entity_type == "sample", AuditEvent.action == "create")))
    assert creates == 150
