"""The first run: `make run` with PORT= links to that port, `/` leads to the console, a favicon,
gzip for text responses when the client asks (never for streamed files)."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_root_redirects_to_the_console(client):
    resp = client.get("/")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/console/")


def test_favicon(client):
    resp = client.get("/favicon.ico")
    assert resp.status_code == 200 and resp.mimetype == "image/vnd.microsoft.icon"
    assert resp.data[:4] == b"\x00\x00\x01\x00" and "max-age=86400" in resp.headers["Cache-Control"]


def test_json_and_html_are_gzipped_when_asked(client):
    plain = client.get("/openapi.json")
    assert "Content-Encoding" not in plain.headers and "Accept-Encoding" in plain.headers["Vary"]
    packed = client.get("/openapi.json", headers={"Accept-Encoding": "br, gzip;q=0.8"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.data) == plain.data and len(packed.data) < len(plain.data) / 3
    refused = client.get("/openapi.json", headers={"Accept-Encoding": "gzip;q=0, br"})
    assert "Content-Encoding" not in refused.headers
    page = client.get("/console/login", headers={"Accept-Encoding": "gzip"})
    assert page.headers["Content-Encoding"] == "gzip" and b"<form" in gzip.decompress(page.data)
    assert "Accept-Encoding" in page.headers["Vary"] and "Cookie" in page.headers["Vary"]
    small = client.get("/healthz", headers={"Accept-Encoding": "gzip"})  # under 1 KB: not worth it
    assert "Content-Encoding" not in small.headers and small.get_json()["status"] == "ok"


def test_streamed_exports_are_not_gzipped(client, official):
    resp = client.get("/api/v1/exports/samples.csv", headers={**official.headers, "Accept-Encoding": "gzip"})
    assert resp.status_code == 200 and "Content-Encoding" not in resp.headers
    assert resp.data.startswith("\ufeff".encode())


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("given, expected", [(None, "http://127.0.0.1:5077"), ("https://soil.lan", "https://soil.lan")])
def test_make_run_links_to_its_port_unless_given(given, expected):
    env = {k: v for k, v in os.environ.items() if k != "FIELDSVC_PUBLIC_BASE_URL"}
    if given:
        env["FIELDSVC_PUBLIC_BASE_URL"] = given
    out = subprocess.run(["make", "-n", "run", "PORT=5077"], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True).stdout
    demo = next(line for line in out.splitlines() if " demo " in line)
    server = next(line for line in out.splitlines() if "gunicorn" in line)
    assert f"FIELDSVC_PUBLIC_BASE_URL='{expected}'" in demo and f"FIELDSVC_PUBLIC_BASE_URL='{expected}'" in server
    assert "--bind 127.0.0.1:5077" in server
