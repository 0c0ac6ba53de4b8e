"""The CLI round trip: init from the provisioning text, add a sample with a photo, sync, status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from offline_sync import parse_provisioning

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "FIELDSVC_DEVICE_TOKEN"}
    proc = subprocess.run([sys.executable, "-m", "offline_sync", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_cli_round_trip_never_prints_the_token(make_server, tmp_path):
    from fieldsvc.devices.services import provisioning_text

    server = make_server()
    text = provisioning_text(server.url, SimpleNamespace(device_id=server.device_id), server.token)
    data = str(tmp_path / "phone")
    parcel = next(f for f in server.county.parcels if f["properties"]["village"] == server.villages[0])
    ring = parcel["geometry"]["coordinates"][0][:-1]
    lat, lon = sum(p[1] for p in ring) / len(ring), sum(p[0] for p in ring) / len(ring)
    photo = tmp_path / "bag.jpg"
    photo.write_bytes(b"\xff\xd8\xff" + os.urandom(50_000))

    outputs = [run("--data", data, "init", "--provision", text)]
    assert server.device_id in outputs[0].stdout
    outputs.append(run("--data", data, "add-sample", "--parcel", parcel["properties"]["code"], "--code", "cli-001",
                       "--lat", str(lat), "--lon", str(lon), "--accuracy", "3.5", "--depth-top", "0",
                       "--depth-bottom", "20", "--photo", str(photo)))
    rid = outputs[-1].stdout.strip()
    outputs.append(run("--data", data, "status"))
    assert "pending" in outputs[-1].stdout and rid in outputs[-1].stdout
    outputs.append(run("--data", data, "-v", "sync"))
    report = json.loads(outputs[-1].stdout.splitlines()[0])
    assert report["error"] is None and report["results"] == {"applied": 1} and report["media_uploaded"] == 1
    assert report["pull"]["changes"] > 0
    outputs.append(run("--data", data, "status"))
    line = next(row for row in outputs[-1].stdout.splitlines() if row.startswith(rid))
    assert "applied" in line and "complete" in line and "CLI-001" not in line  # local data as typed
    assert json.loads(outputs[-1].stdout.splitlines()[-1]) == {"applied": 1}
    outputs.append(run("--data", data, "conflicts"))
    assert outputs[-1].stdout == ""
    for out in outputs:
        assert server.token not in out.stdout + out.stderr

    from fieldsvc.samples.models import Sample

    stored = server.query(lambda s: s.get(Sample, rid))
    assert stored is not None and stored.code == "CLI-001" and stored.state == "complete"


@pytest.mark.parametrize(("text", "expected"), [
    ("https://f.example/field/#server=https://f.example&device=dev_1&token=fsd_a-b_c",
     {"server": "https://f.example", "device": "dev_1", "token": "fsd_a-b_c"}),
    ("https://f.example/field/#server=https%3A%2F%2Ff.example%2Fsub%2F&token=t%2B1",
     {"server": "https://f.example/sub", "device": "", "token": "t+1"}),
])
def test_parse_provisioning(text, expected):
    assert parse_provisioning(text) == expected


def test_init_refuses_bad_input_without_echoing_the_token(tmp_path):
    proc = run("--data", str(tmp_path / "d"), "init", "--provision", "https://x/field/#token=secret-tok", check=False)
    assert proc.returncode == 1 and "server" in proc.stderr and "secret-tok" not in proc.stderr
    proc = run("--data", str(tmp_path / "d"), "sync", check=False)
    assert proc.returncode == 1 and "not initialised" in proc.stderr
