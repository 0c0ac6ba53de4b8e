"""Certificates: A4 PDFs/s and a 1,000-label sheet through the service; the public verify endpoint under gunicorn.

Run: .venv/bin/python bench/certificates.py [--seconds 5] [--threads 8] [--rate 200] [--labels 1000]
Targets (issue 6): >= 50 A4 PDFs/s; 1,000 labels <= 5 s; verify >= 33 % of a bare Flask route's rate on the
same server in the same run; p99 <= 50 ms at 200 req/s offered. Issue 18 adds: a 1,000-label sheet with
serials (100 codes x 10: the label sheet made once, quota counted and serials stored, then its PDF) <= 5 s;
the serial page ``/C/<CODE>/<SERIAL>`` >= 33 % of the bare
route, p99 <= 50 ms at 200 req/s, and every answered scan counted (sum of the serials' checks).

The server is gunicorn (2 sync workers, loopback) running this module's ``server_app()``: the real app plus
``/bench/bare`` (a route that touches nothing), so both are measured on one server. Load comes from threads
with one keep-alive ``http.client`` connection each, bounded in requests and seconds. Grading is stood in for
(every subject qualifies), because only certificates are measured here. Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fieldsvc import create_app  # noqa: E402
from fieldsvc.extensions import db  # noqa: E402

BENCH_CONFIG = {"PASSWORD_HASH_PROFILE": "CHEAPEST", "LOG_LEVEL": "WARNING", "SECRET_KEY": "bench", "DEMO": False,
                "VERIFY_RATE_LIMIT": 10**9, "PUBLIC_BASE_URL": "https://q.example.cn"}


def server_app():
    """gunicorn entry point: the app configured from FIELDSVC_* plus a bare baseline route."""
    app = create_app(BENCH_CONFIG)
    app.add_url_rule("/bench/bare", "bench_bare", lambda: {"ok": True})
    return app


def _stand_in_grading() -> None:
    from fieldsvc.certificates import services

    def qualification(subject_type, code, rule_pack=None):
        return types.SimpleNamespace(qualified=True, reasons=[], grade="clean", verdict="qualified",
                                     rule_pack={"code": "green_food_soil", "version": "2021.1", "verified": False},
                                     tested_on=date(2026, 9, 14), grade_id=None, explanation={})

    services.qualification = qualification


def setup(tmp: Path, certificates: int) -> tuple[object, list[str]]:
    from flask_migrate import upgrade

    from fieldsvc.auth.principal import Actor
    from fieldsvc.certificates import services
    from fieldsvc.demo import load_places
    from fieldsvc.places.demo_data import generate_county

    app = create_app({**BENCH_CONFIG, "INSTANCE_PATH": str(tmp), "DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}"})
    _stand_in_grading()
    county = generate_county(seed=7, parcels=max(certificates, 60), townships=2, villages=12) if certificates <= 60 \
        else generate_county(seed=7, parcels=certificates, townships=3, villages=40)
    actor = Actor(user_id=0, username="bench", role="official")
    with app.app_context():
        upgrade()
        load_places(county)
        codes = []
        for feature in county.parcels[:certificates]:
            cert, _ = services.issue_certificate({"subject_type": "parcel", "code": feature["properties"]["code"]},
                                                 actor, app.config)
            codes.append(cert.code)
        db.session.commit()
    return app, codes


def bench_pdfs(app, codes: list[str], seconds: float, labels: int = 1000) -> dict[str, float]:
    """A4 PDFs/s; ``labels`` plain labels; a sheet of ``labels`` serialised labels (100 codes × labels/100)
    made once (the POST: quota counted, serials stored) and its PDF fetched again (the same serials)."""
    from fieldsvc.auth.principal import Actor
    from fieldsvc.certificates import services, sheets

    actor = Actor(user_id=0, username="bench", role="official")
    with app.app_context():
        certs = [services.get_certificate_by_code(c) for c in codes[:50]]
        services.certificate_pdf(certs[0], app.config)  # fonts and templates loaded once
        n, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            services.certificate_pdf(certs[n % len(certs)], app.config)
            n += 1
        a4 = n / (time.perf_counter() - started)
        plain = [codes[i % len(codes)] for i in range(labels)]
        started = time.perf_counter()
        sheet = services.labels_pdf(plain, "a4_3x7", 0, actor, app.config)
        label_s = time.perf_counter() - started
        db.session.commit()
        per_code = max(1, labels // 100)
        started, cpu = time.perf_counter(), time.process_time()
        made, _ = sheets.create_sheet(codes[:100], "a4_3x7", 0, per_code, "bench: the quota is not measured here",
                                      actor, app.config, "bench-sheet")
        serial_sheet = sheets.sheet_pdf(made, actor, app.config)
        db.session.commit()  # the serials are stored with the sheet
        serial_s, serial_cpu = time.perf_counter() - started, time.process_time() - cpu
        started = time.perf_counter()
        again = sheets.sheet_pdf(sheets.get_sheet(made.id, actor), actor, app.config)  # a retried download
        refetch_s = time.perf_counter() - started
        db.session.commit()
        assert len(again) > 0 and made.labels == 100 * per_code
    return {"a4_per_s": round(a4, 1), "labels": labels, "labels_1000_s": round(label_s, 3),
            "labels_1000_bytes": len(sheet), "serial_labels": made.labels,
            "serial_labels_1000_s": round(serial_s, 3), "serial_labels_1000_cpu_s": round(serial_cpu, 3),
            "serial_labels_1000_bytes": len(serial_sheet), "serial_sheet_refetch_s": round(refetch_s, 3)}


def serial_paths(app) -> list[str]:
    from sqlalchemy import select

    from fieldsvc.certificates.models import Certificate, LabelSerial

    with app.app_context():
        rows = db.session.execute(select(Certificate.code, LabelSerial.serial).join(
            LabelSerial, LabelSerial.certificate_id == Certificate.id).order_by(LabelSerial.id))
        return [f"/C/{code}/{serial}" for code, serial in rows]


def counted_checks(app) -> int:
    from sqlalchemy import func, select

    from fieldsvc.certificates.models import LabelSerial

    with app.app_context():
        return int(db.session.scalar(select(func.coalesce(func.sum(LabelSerial.checks), 0))))


def _get(conn: http.client.HTTPConnection, path: str) -> int:
    conn.request("GET", path, headers={"User-Agent": "fieldsvc-bench (Mobile)"})
    resp = conn.getresponse()
    resp.read()
    return resp.status


def closed_loop(port: int, paths: list[str], threads: int, seconds: float, max_requests: int) -> dict[str, float]:
    """As fast as ``threads`` keep-alive clients can go, for ``seconds`` or ``max_requests``."""
    lock, counts, errors = threading.Lock(), [0], [0]
    deadline = time.perf_counter() + seconds

    def worker(offset: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        i = offset
        while time.perf_counter() < deadline:
            with lock:
                if counts[0] >= max_requests:
                    return
                counts[0] += 1
            status = _get(conn, paths[i % len(paths)])
            i += 1
            if status != 200:
                with lock:
                    errors[0] += 1
        conn.close()

    started = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(k * 7,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    return {"req_per_s": round(counts[0] / elapsed, 1), "requests": counts[0], "errors": errors[0]}


def open_loop(port: int, paths: list[str], rate: float, seconds: float, threads: int) -> dict[str, float]:
    """A fixed offered rate: request k is due at k/rate; latency counts from when it was due."""
    total = int(rate * seconds)
    latencies: list[float] = []
    lock, next_k, errors = threading.Lock(), [0], [0]
    start = time.perf_counter() + 0.2

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while True:
            with lock:
                k = next_k[0]
                if k >= total:
                    break
                next_k[0] += 1
            due = start + k / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            status = _get(conn, paths[k % len(paths)])
            took = time.perf_counter() - due
            with lock:
                latencies.append(took)
                errors[0] += status != 200
        conn.close()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    latencies.sort()
    return {"offered_req_per_s": rate, "requests": len(latencies), "errors": errors[0],
            "p50_ms": round(1000 * statistics.median(latencies), 2),
            "p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 2)}


def start_gunicorn(tmp: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "FIELDSVC_INSTANCE_PATH": str(tmp), "FIELDSVC_DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}"}
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}",
                             "--log-level", "warning", "--chdir", str(ROOT), "bench.certificates:server_app()"],
                            env=env, start_new_session=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            if _get(conn, "/bench/bare") == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGTERM)
    raise SystemExit("gunicorn did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--port", type=int, default=18731)
    parser.add_argument("--labels", type=int, default=1000, help="sheet size (targets are for 1,000)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="fieldsvc-bench-certs-"))
    app, codes = setup(tmp, 200)
    result = bench_pdfs(app, codes, min(args.seconds, 5.0), args.labels)
    print(f"load average at start {load:.1f} (a busy machine makes every figure below worse)")
    print(f"A4 certificates: {result['a4_per_s']}/s (target >= 50); {args.labels:,} labels: "
          f"{result['labels_1000_s']} s (target <= 5 s at 1,000); a sheet of {result['serial_labels']:,} labels "
          f"with serials made: {result['serial_labels_1000_s']} s ({result['serial_labels_1000_cpu_s']} s CPU; "
          f"target <= 5 s at 1,000), fetched again: {result['serial_sheet_refetch_s']} s")
    serials = serial_paths(app)
    with app.app_context():
        db.engine.dispose()
    proc = start_gunicorn(tmp, args.port)
    try:
        verify_paths = [f"/api/v1/verify/{c}" for c in codes]
        page_paths = [f"/C/{c}" for c in codes]
        cap = int(20_000 * args.seconds)
        closed_loop(args.port, verify_paths + ["/bench/bare"], args.threads, 1.0, cap)  # warm both workers
        fixed = open_loop(args.port, verify_paths, args.rate, args.seconds, max(args.threads, 16))
        fixed_page = open_loop(args.port, page_paths, args.rate, args.seconds, max(args.threads, 16))
        bare = closed_loop(args.port, ["/bench/bare"], args.threads, args.seconds, cap)
        verify = closed_loop(args.port, verify_paths, args.threads, args.seconds, cap)
        scan_page = closed_loop(args.port, page_paths, args.threads, args.seconds, cap)
        fixed_serial = open_loop(args.port, serials, args.rate, args.seconds, max(args.threads, 16))
        serial_page = closed_loop(args.port, serials, args.threads, args.seconds, cap)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    ratio = verify["req_per_s"] / bare["req_per_s"]
    print(f"bare route {bare['req_per_s']} req/s; verify JSON {verify['req_per_s']} req/s "
          f"({ratio:.0%} of bare, target >= 33 %); scan page {scan_page['req_per_s']} req/s")
    print(f"verify at {args.rate:.0f} req/s offered: p50 {fixed['p50_ms']} ms, p99 {fixed['p99_ms']} ms "
          f"(target p99 <= 50 ms), errors {fixed['errors']}; scan page p50 {fixed_page['p50_ms']} ms, "
          f"p99 {fixed_page['p99_ms']} ms")
    answered = fixed_serial["requests"] - fixed_serial["errors"] + serial_page["requests"] - serial_page["errors"]
    checks = counted_checks(app)
    serial_ratio = serial_page["req_per_s"] / bare["req_per_s"]
    print(f"serial page {serial_page['req_per_s']} req/s ({serial_ratio:.0%} of bare, target >= 33 %); at "
          f"{args.rate:.0f} req/s offered: p50 {fixed_serial['p50_ms']} ms, p99 {fixed_serial['p99_ms']} ms "
          f"(target <= 50 ms), errors {fixed_serial['errors']}; scans answered {answered}, counted {checks}")
    result.update(serial_page=serial_page, fixed_rate_serial=fixed_serial, serial_to_bare=round(serial_ratio, 3),
                  serial_scans_answered=answered, serial_checks_counted=checks)
    result.update(bare=bare, verify=verify, page=scan_page, fixed_rate=fixed,
                  fixed_rate_page=fixed_page, verify_to_bare=round(ratio, 3),
                  page_to_bare=round(scan_page["req_per_s"] / bare["req_per_s"], 3),
                  load_average=round(load, 2), full_size=args.labels == 1000,
                  targets_met={"a4": result["a4_per_s"] >= 50,
                               "labels": result["labels_1000_s"] <= 5 if args.labels == 1000 else None,
                               "ratio": ratio >= 0.33, "p99": fixed["p99_ms"] <= 50,
                               "serial_labels": result["serial_labels_1000_s"] <= 5 if args.labels == 1000 else None,
                               "serial_ratio": serial_ratio >= 0.33, "serial_p99": fixed_serial["p99_ms"] <= 50,
                               "scans_counted": checks == answered},
                  database="sqlite", workers=2, cpus=os.cpu_count())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
