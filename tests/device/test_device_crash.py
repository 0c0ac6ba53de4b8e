"""A server SIGKILLed while a push is in flight, restarted on the same database: 0 lost, 0 duplicated."""

from __future__ import annotations

import os
import random
import threading
import time

import pytest
from sqlalchemy import func, select

from offline_sync import RetryPolicy, SyncClient

from .conftest import free_port
from .test_device_media import PUT
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


@pytest.mark.slow
def test_server_killed_repeatedly_while_photos_upload_strands_no_sample(make_server, make_proxy, tmp_path):
    """Issue 19: killed between publishing a photo's file and the commit (three times, on purpose)
    and at random moments of the pushes and uploads (three more), restarted each time on the same
    database: 0 samples lost, 0 duplicated, none left ``awaiting_media`` with all its blobs complete."""
    from fieldsvc.media.models import MediaBlob
    from fieldsvc.samples.models import Sample

    server = make_server(start=False, MAX_BATCH_RECORDS=10)
    port = free_port()
    crash_env = {"CRASH_AFTER_PUBLISH": "2,7,13", "CRASH_COUNTER": str(tmp_path / "published")}

    def start() -> None:
        server.start_process(port, app_target="tests.device.crash_app", extra_env=crash_env)

    start()
    proxy = make_proxy(port)
    rng = random.Random(19)
    # random kills: while a push body arrives, and mid-photo on two uploads
    proxy.add(PUSH, "cut_request", on=2, after=rng.randrange(500, 3000), callback=server.kill_process)
    proxy.add(PUT, "cut_request", on={5, 17}, after=rng.randrange(1000, 20_000), callback=server.kill_process)
    done = threading.Event()
    restarts: list[float] = []

    failures: list[str] = []

    def restarter() -> None:  # brings the server back whenever it died (on purpose or not)
        while not done.is_set():
            if server.proc is not None and server.proc.poll() is not None:
                t0 = time.monotonic()
                try:
                    start()
                except RuntimeError as exc:  # killed again while starting: try again
                    failures.append(str(exc))
                    server.kill_process()
                    continue
                restarts.append(time.monotonic() - t0)
            time.sleep(0.05)

    thread = threading.Thread(target=restarter)
    thread.start()
    n = 24
    try:
        with SyncClient(tmp_path / "phone", policy=RetryPolicy(max_attempts=80, base_s=0.05, cap_s=0.25)) as client:
            client.init(proxy.url, server.token)
            ids = []
            for i in range(n):
                photo = tmp_path / f"p{i}.jpg"
                photo.write_bytes(os.urandom(30_000 + i))
                ids += add_samples(client, server, 1, prefix=f"CRASH{i:03d}-", photos=[photo])
            for _ in range(5):  # the client's own loop: sync again while anything is left
                report = client.sync(do_pull=False)
                media = client.outbox.media()
                if report.error is None and all(m["status"] == "done" for m in media):
                    break
    finally:
        done.set()
        thread.join(timeout=60)
    assert report.error is None, (report.error, failures)
    assert [m["status"] for m in media] == ["done"] * n
    assert (tmp_path / "published").read_text() >= "13"  # the three kills after publish all happened
    assert len(restarts) >= 6, restarts
    stored = server_samples(server)
    assert sorted(stored) == sorted(ids)  # 0 lost
    assert len(set(stored.values())) == n  # 0 duplicated

    def stranded(session) -> list[str]:
        complete = set(session.scalars(select(MediaBlob.sha256).where(MediaBlob.complete.is_(True))))
        waiting = session.scalars(select(Sample).where(Sample.state == "awaiting_media"))
        return [s.code for s in waiting if {m["sha256"] for m in s.media} <= complete]

    assert server.query(stranded) == []
    states = server.query(lambda s: dict(s.execute(select(Sample.state, func.count()).group_by(Sample.state)).all()))
    assert states == {"complete": n}
