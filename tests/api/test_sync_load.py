"""32 devices pushing at once against a multi-process server (gunicorn), on each engine: 0 5xx, 0 lost.

The server runs in its own processes on the same database as the test's app, so nothing
another process needs may live in process memory.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from fieldsvc.devices.services import register_device
from fieldsvc.extensions import db
from fieldsvc.samples.models import Sample

ROOT = Path(__file__).resolve().parents[2]
DEVICES, BATCHES, RECORDS = 32, 3, 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def gunicorn(app_config, tmp_path):
    """gunicorn with 3 workers on the test's database, stopped at the end."""
    port = free_port()
    env = {**os.environ, "FIELDSVC_DATABASE_URL": app_config["DATABASE_URL"],
           "FIELDSVC_INSTANCE_PATH": app_config["INSTANCE_PATH"], "FIELDSVC_SECRET_KEY": "load-test",
           "FIELDSVC_LOG_LEVEL": "WARNING", "FIELDSVC_DEMO": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--workers", "3", "--threads", "4",
                             "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "app:app"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1).read()
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        proc.wait()
        pytest.fail(f"gunicorn did not start: {proc.stderr.read().decode()[-2000:]}")
    yield base
    proc.terminate()
    proc.wait(timeout=20)
    proc.stderr.close()


def device_tokens(app, county, n: int) -> list[tuple[str, list[dict]]]:
    from fieldsvc.auth.principal import SYSTEM
    from fieldsvc.auth.services import create_user

    villages = [r["code"] for r in county.regions if r["level"] == "village"]
    out = []
    with app.app_context():
        create_user("loadsampler", "pw-loadsampler", "sampler", county_code=None, config=app.config, actor="test")
        for i in range(n):
            village = villages[i % len(villages)]
            registered = register_device({"name": f"phone {i}", "user": "loadsampler", "villages": [village],
                                          "parcels": []}, SYSTEM)
            parcels = [f for f in county.parcels if f["properties"]["village"] == village]
            out.append((registered.token, parcels))
        db.session.commit()
    return out


def push(base: str, token: str, records: list[dict]) -> int:
    body = json.dumps({"device_sent_at": "2026-11-24T03:00:00Z", "schema_version": 1, "records": records}).encode()
    request = urllib.request.Request(base + "/api/v1/sync/push", data=body, method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())})
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            results = json.loads(resp.read())["results"]
            assert all(r["status"] == "applied" for r in results), results
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def records_for(device: int, batch: int, parcels: list[dict]) -> list[dict]:
    out = []
    for r in range(RECORDS):
        parcel = parcels[r % len(parcels)]
        lon, lat = parcel["geometry"]["coordinates"][0][0]
        out.append({"type": "sample", "id": str(uuid.uuid4()), "base_version": None, "deleted": False, "data": {
            "code": f"L{device:02d}-{batch}-{r:03d}", "parcel": parcel["properties"]["code"],
            "collected_at": "2026-11-24T02:00:00Z",
            "location": {"lat": lat + 1e-5, "lon": lon + 1e-5, "accuracy_m": 5, "mock": False},
            "depth_top_cm": 0, "depth_bottom_cm": 20, "sample_type": "composite",
            "land_use_observed": parcel["properties"]["land_use"], "note": "", "media": []}})
    return out


@pytest.mark.slow
def test_32_devices_at_once_against_several_processes(app, county, gunicorn):
    devices = device_tokens(app, county, DEVICES)
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(DEVICES)

    def phone(i: int, token: str, parcels: list[dict]) -> None:
        start.wait()
        for b in range(BATCHES):
            status = push(gunicorn, token, records_for(i, b, parcels))
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=phone, args=(i, t, p)) for i, (t, p) in enumerate(devices)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(set(statuses)) == [200], statuses
    assert len(statuses) == DEVICES * BATCHES
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Sample)) == DEVICES * BATCHES * RECORDS
