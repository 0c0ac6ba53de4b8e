"""Parallel identical OpenRosa submissions against a real threaded server: one sample, all 201."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
import uuid

from tests.api.test_openrosa_api import get_sample, instance_xml, manifest, phone  # noqa: F401  (fixture)
from tests.api.test_sync_concurrency import _parallel
from tests.api.test_sync_push import count_samples


def multipart(xml: bytes, files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    chunks = [f'--{boundary}\r\nContent-Disposition: form-data; name="xml_submission_file"; '
              f'filename="submission.xml"\r\nContent-Type: text/xml\r\n\r\n'.encode(), xml, b"\r\n"]
    for name, content in files:
        chunks += [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}"\r\n'
                   f"Content-Type: image/jpeg\r\n\r\n".encode(), content, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def test_parallel_identical_submissions_make_one_sample(live, client, phone, official, app):  # noqa: F811
    iid = str(uuid.uuid4())
    files = [("p1.jpg", os.urandom(30_000))]
    body, content_type = multipart(instance_xml(iid, phone["parcels"][0], "OR-PAR-1", ["p1.jpg"]), files)

    def send(_i):
        req = urllib.request.Request(f"{live}/submission", data=body, method="POST",
                                     headers={**phone["headers"], "Content-Type": content_type})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code

    statuses = _parallel(5, send)
    assert all(s in (201, 503) for s in statuses) and 201 in statuses, statuses  # 503: busy, retry later
    assert count_samples(app) == 1
    got = get_sample(client, official.headers, iid)
    assert got["version"] == 1 and got["state"] == "complete" and got["media"] == manifest(files)
