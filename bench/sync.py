"""Sync throughput over HTTP: push records/s and pull changes/s, against baselines measured in the same run.

Run: ``.venv/bin/python bench/sync.py [--records 10000] [--runs 3] [--large 1000000] [--no-pouchdb] [--ids v7|v4]``

- one gunicorn worker (one process, sync) on loopback, SQLite in a fresh instance folder under /tmp;
- push: batches of 500 new samples (one Idempotency-Key each) over one keep-alive connection, after one
  untimed warm-up batch and pull page (pouchdb-server gets the same warm-up batch);
- pull: the whole store page by page (limit 1000);
- baselines, same run: the same sample rows inserted with ``sqlite3.executemany`` (raw insert), and the
  same documents through pouchdb-server 4.2.0's ``_bulk_docs`` on loopback in batches of 500, with its
  default store (LevelDB files on disk, as ``pouchdb-server`` runs out of the box: like fieldsvc it keeps
  what it accepted) and, for reference, ``--in-memory`` (nothing kept); the target ratio is against the
  default store. Installed with ``npm install pouchdb-server@4.2.0`` into a cache folder on first use;
  skipped when npm is missing or the install fails;
- growth: push cost per record into a store that already holds 10 k samples vs ``--large`` samples (rows,
  their audit events filled with raw SQL inserts of realistic rows, not through HTTP); both servers run
  at once and the pushes alternate between them, medians of ``--growth-rounds``;
- sample ids are made as our clients make them (``offline_sync.ids``: time-ordered UUIDv7); ``--ids v4``
  makes them random, as third-party clients (ODK Collect) do, in the fill and the pushes alike;
- where a record's time goes, in-process (validation, hashing, marshmallow of the same shape for comparison);
- wall times plus the server process's CPU time (``/proc``), as the machine may be shared.

Every figure is the median of ``--runs`` runs. Prints figures and ratios, then one JSON line.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from offline_sync.ids import new_sample_id  # noqa: E402

BATCH = 500
POUCHDB_VERSION = "4.2.0"
POUCHDB_HOME = Path(os.environ.get("FIELDSVC_BENCH_CACHE", Path(tempfile.gettempdir()) / "fieldsvc-bench-cache"))


def setup(instance: Path) -> tuple[str, list[dict]]:
    """Migrate, load a county, register a device on every village; returns the token and its parcels."""
    from flask_migrate import upgrade

    from fieldsvc import create_app
    from fieldsvc.auth.principal import SYSTEM
    from fieldsvc.auth.services import create_user
    from fieldsvc.demo import load_places
    from fieldsvc.devices.services import register_device
    from fieldsvc.extensions import db
    from fieldsvc.places.demo_data import generate_county

    app = create_app({"INSTANCE_PATH": str(instance), "DEMO": False, "PASSWORD_HASH_PROFILE": "CHEAPEST",
                      "LOG_LEVEL": "WARNING"})
    with app.app_context():
        upgrade()
        county = generate_county(seed=11, parcels=2000)
        load_places(county)
        create_user("bench", "bench-password", "sampler", county_code=county.county, config=app.config,
                    actor="bench")
        villages = [r["code"] for r in county.regions if r["level"] == "village"]
        device = register_device({"name": "bench", "user": "bench", "villages": villages, "parcels": []}, SYSTEM)
        db.session.commit()
        db.engine.dispose()
    return device.token, county.parcels


def records_for(parcels: list[dict], n: int, prefix: str, new_id: Callable[[], str] = new_sample_id) -> list[dict]:
    """``n`` new samples round the parcels, with ids as our clients make them (time-ordered UUIDv7)."""
    out = []
    for i in range(n):
        f = parcels[i % len(parcels)]
        ring = f["geometry"]["coordinates"][0][:-1]
        lat = sum(p[1] for p in ring) / len(ring)
        lon = sum(p[0] for p in ring) / len(ring)
        out.append({"type": "sample", "id": new_id(), "base_version": None, "deleted": False, "data": {
            "code": f"{prefix}-{i:07d}", "parcel": f["properties"]["code"],
            "collected_at": "2026-11-20T08:30:00+08:00",
            "location": {"lat": round(lat, 7), "lon": round(lon, 7), "accuracy_m": 4.5, "mock": False},
            "depth_top_cm": 0, "depth_bottom_cm": 20, "sample_type": "composite", "land_use_observed": "paddy",
            "note": "bench sample", "media": []}})
    return out


def start_server(instance: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "FIELDSVC_INSTANCE_PATH": str(instance), "FIELDSVC_DEMO": "0",
           "FIELDSVC_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([str(ROOT / ".venv/bin/gunicorn"), "-w", "1", "-b", f"127.0.0.1:{port}",
                             "--timeout", "300", "--log-level", "warning", "app:app"], cwd=ROOT, env=env)
    for _ in range(200):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            conn.close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("server did not start")


def push_all(port: int, token: str, records: list[dict]) -> tuple[float, dict]:
    bodies = [json.dumps({"device_sent_at": "2026-11-24T00:00:00Z", "schema_version": 1,
                          "records": records[i:i + BATCH]}).encode() for i in range(0, len(records), BATCH)]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    statuses: dict[str, int] = {}
    t0 = time.perf_counter()
    for body in bodies:
        conn.request("POST", "/api/v1/sync/push", body=body, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json",
            "Idempotency-Key": str(uuid.uuid4())})
        resp = conn.getresponse()
        payload = resp.read()
        assert resp.status == 200, payload[:300]
        for r in json.loads(payload)["results"]:
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed, statuses


def warm_up(port: int, token: str, records: list[dict]) -> None:
    """One untimed push and one pull page, so the timed runs measure a running server, not its
    first requests (imports, statement compilation); pouchdb-server gets the same untimed batch."""
    push_all(port, token, records)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    conn.request("GET", "/api/v1/sync/pull?limit=1", headers={"Authorization": f"Bearer {token}"})
    conn.getresponse().read()
    conn.close()


def pull_all(port: int, token: str) -> tuple[float, int]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    cursor, total = "", 0
    t0 = time.perf_counter()
    while True:
        conn.request("GET", f"/api/v1/sync/pull?limit=1000&cursor={cursor}",
                     headers={"Authorization": f"Bearer {token}"})
        resp = conn.getresponse()
        body = json.loads(resp.read())
        assert resp.status == 200, body
        total += len(body["changes"])
        cursor = body["cursor"]
        if not body["has_more"]:
            break
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed, total


def raw_baseline(db_path: Path, records: list[dict], keep: bool = False) -> float:
    """The same rows straight into the samples table with executemany, one transaction per batch.

    ``keep``: into the store as it is (growth check); else into a copy emptied of samples."""
    target = Path(tempfile.mkdtemp()) / "raw.db"
    shutil.copyfile(db_path, target)
    conn = sqlite3.connect(target)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    if not keep:
        conn.execute("DELETE FROM samples")
        conn.commit()
    rows = [(r["id"], r["data"]["code"], r["data"]["parcel"], "360000", "complete", "[]",
             r["data"]["collected_at"], "2026-11-20 00:30:00", "2026-11-24 00:00:00", 0.0,
             r["data"]["location"]["lat"], r["data"]["location"]["lon"], 4.5, 0, json.dumps(r["data"]["location"]),
             0, 20, "composite", "paddy", "bench sample", "[]", "h" * 64, 1, i, None, "raw", None,
             "2026-11-24 00:00:00", "2026-11-24 00:00:00", None) for i, r in enumerate(records)]
    sql = ("INSERT INTO samples (id, code, parcel_code, county_code, state, flags, collected_at_raw, collected_at, "
           "received_at, clock_skew_s, lat, lon, accuracy_m, mock_location, location_raw, depth_top_cm, "
           "depth_bottom_cm, sample_type, land_use_observed, note, media, content_hash, version, seq, device_pk, "
           "created_by, held_until, created_at, updated_at, deleted_at) VALUES (" + ",".join("?" * 30) + ")")
    t0 = time.perf_counter()
    for i in range(0, len(rows), BATCH):
        conn.executemany(sql, rows[i:i + BATCH])
        conn.commit()
    elapsed = time.perf_counter() - t0
    conn.close()
    shutil.rmtree(target.parent)
    return elapsed


def breakdown(records: list[dict], parcels: list[dict]) -> dict[str, float]:
    """Microseconds per record for each step of judging a pushed sample, in-process."""
    from datetime import UTC, datetime

    from marshmallow import Schema, fields, validate

    from fieldsvc.places.geometry import _ray_inside, distance_to_geometry_m
    from fieldsvc.samples.content import content_hash
    from fieldsvc.samples.validation import SampleRules, location_flags, time_flags, validate_sample_data

    class Location(Schema):
        lat = fields.Float(required=True, validate=validate.Range(-90, 90))
        lon = fields.Float(required=True, validate=validate.Range(-180, 180))
        accuracy_m = fields.Float(load_default=None)
        mock = fields.Boolean(load_default=False)

    class Media(Schema):
        name, sha256, bytes, mime = fields.String(), fields.String(), fields.Integer(), fields.String()

    class SampleData(Schema):  # what marshmallow would cost for the same shape (not used by the server)
        code = fields.String(required=True)
        parcel = fields.String(required=True)
        collected_at = fields.AwareDateTime(required=True)
        location = fields.Nested(Location, required=True)
        depth_top_cm = fields.Float(required=True, validate=validate.Range(0, 300))
        depth_bottom_cm = fields.Float(required=True, validate=validate.Range(0, 300))
        sample_type = fields.String(required=True)
        land_use_observed = fields.String(allow_none=True)
        note = fields.String(allow_none=True)
        media = fields.List(fields.Nested(Media))

    rules, n = SampleRules(), len(records)
    text = json.dumps({"records": records}).encode()
    geoms = {f["properties"]["code"]: f["geometry"] for f in parcels}
    now = datetime.now(UTC)
    out: dict[str, float] = {}

    def timed(name, fn):
        t0 = time.perf_counter()
        fn()
        out[name] = round((time.perf_counter() - t0) / n * 1e6, 1)

    timed("json_parse", lambda: json.loads(text))
    checked = []
    timed("validate_sample_data", lambda: checked.extend(validate_sample_data(r["data"], rules) for r in records))
    timed("content_hash", lambda: [content_hash(c.clean) for c in checked])
    timed("distance_to_geometry_m", lambda: [distance_to_geometry_m(c.clean["location"]["lon"],
                                                              c.clean["location"]["lat"],
                                                              geoms[c.clean["parcel"]]) for c in checked])
    timed("ray_inside", lambda: [_ray_inside(c.clean["location"]["lon"], c.clean["location"]["lat"],
                                                geoms[c.clean["parcel"]]) for c in checked])
    timed("flags", lambda: [(location_flags(1, 1, 4.5, 0, rules), time_flags(c.collected_at_utc, 0, now, rules))
                            for c in checked])
    schema = SampleData()
    timed("marshmallow_same_shape", lambda: [schema.load(r["data"]) for r in records])
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (the gunicorn master and its worker)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    try:
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def fill(db_path: Path, n: int, parcels: list[dict], new_id: Callable[[], str] = new_sample_id) -> None:
    """Grow the store by ``n`` samples quickly: raw inserts of realistic rows (stored text included)
    with valid seqs, each with the audit event a push would have written (so every index a push
    touches is as large as in a real store of that size; an unedited sample has no version row)."""
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA journal_mode=WAL")
    start = conn.execute("SELECT value FROM sequence_counters WHERE name='changes'").fetchone()[0]
    sample_sql = ("INSERT INTO samples (id, code, parcel_code, county_code, state, flags, collected_at_raw, "
                  "collected_at, received_at, clock_skew_s, lat, lon, accuracy_m, mock_location, location_raw, "
                  "depth_top_cm, depth_bottom_cm, sample_type, land_use_observed, note, media, content_hash, "
                  "version, seq, device_pk, created_by, held_until, created_at, updated_at, deleted_at, data_json) "
                  "VALUES (" + ",".join("?" * 31) + ")")
    audit_sql = ("INSERT INTO audit_events (at, actor, action, entity_type, entity_key, before_digest, "
                 "after_digest, request_id, details) VALUES (?,?,?,?,?,?,?,?,?)")
    chunk = 50_000
    for base in range(0, n, chunk):
        samples, audits = [], []
        for i in range(base, min(n, base + chunk)):
            sid, code = new_id(), f"FILL-{start + i:09d}"
            parcel = parcels[i % len(parcels)]["properties"]["code"]
            lat, lon = 28.0 + (i % 997) * 1e-5, 115.0 + (i % 991) * 1e-5
            location = json.dumps({"lat": lat, "lon": lon, "accuracy_m": 4.5, "mock": False})
            data = json.dumps({"code": code, "parcel": parcel, "collected_at": "2026-11-20T08:30:00+08:00",
                               "location": json.loads(location), "depth_top_cm": 0, "depth_bottom_cm": 20,
                               "sample_type": "composite", "land_use_observed": "paddy", "note": None,
                               "media": []}, sort_keys=True, separators=(",", ":"))
            digest = uuid.uuid4().hex * 2
            samples.append((sid, code, parcel, "360000", "complete", "[]", "2026-11-20T08:30:00+08:00",
                            "2026-11-20 00:30:00.000000", "2026-11-24 00:00:00.000000", 0.0, lat, lon, 4.5, 0,
                            location, 0, 20, "composite", "paddy", None, "[]", digest, 1, start + i + 1, None,
                            "device:fill", None, "2026-11-24 00:00:00.000000", "2026-11-24 00:00:00.000000", None,
                            data))
            audits.append(("2026-11-24 00:00:00.000000", "device:fill", "create", "sample", sid, None, digest,
                           None, "null"))
        conn.executemany(sample_sql, samples)
        conn.executemany(audit_sql, audits)
        conn.commit()
    conn.execute("UPDATE sequence_counters SET value = ? WHERE name='changes'", (start + n,))
    conn.commit()
    conn.close()


# --- pouchdb-server, the same documents through _bulk_docs -----------------------------------

def pouchdb_binary() -> Path | None:
    """pouchdb-server from the npm registry, installed once into the cache folder; None if unavailable."""
    home = POUCHDB_HOME / f"pouchdb-server-{POUCHDB_VERSION}"
    binary = home / "node_modules" / ".bin" / "pouchdb-server"
    if binary.exists():
        return binary
    if shutil.which("npm") is None or shutil.which("node") is None:
        return None
    home.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(home),
                        f"pouchdb-server@{POUCHDB_VERSION}"], check=True, timeout=600,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (subprocess.SubprocessError, OSError):
        return None
    return binary if binary.exists() else None


def pouchdb_push(binary: Path, port: int, records: list[dict], in_memory: bool) -> tuple[float, float] | None:
    """Seconds (wall, server CPU) for pouchdb-server to take the documents in batches of 500; None on failure.

    Its default store writes LevelDB files under the working directory (a fresh temporary one)."""
    workdir = Path(tempfile.mkdtemp(prefix="fieldsvc-bench-pouch-"))
    store = ["--in-memory"] if in_memory else ["--dir", str(workdir)]
    proc = subprocess.Popen([str(binary), *store, "--host", "127.0.0.1", "--port", str(port)],
                            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        conn = None
        for _ in range(300):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
                conn.request("PUT", "/bench")
                resp = conn.getresponse()
                resp.read()
                if resp.status in (201, 412):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            return None
        docs = [{"_id": r["id"], "type": r["type"], **r["data"]} for r in records]
        bodies = [json.dumps({"docs": docs[i:i + BATCH]}).encode() for i in range(0, len(docs), BATCH)]
        warm = [{"_id": f"warm-{i}", "type": "sample", **records[0]["data"]} for i in range(BATCH)]
        conn.request("POST", "/bench/_bulk_docs", body=json.dumps({"docs": warm}).encode(),
                     headers={"Content-Type": "application/json"})  # warm-up, as for fieldsvc
        conn.getresponse().read()
        cpu0, t0 = cpu_seconds(proc.pid), time.perf_counter()
        for body in bodies:
            conn.request("POST", "/bench/_bulk_docs", body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            out = json.loads(resp.read())
            assert resp.status == 201 and all(d.get("ok") for d in out), out[:3]
        wall, cpu = time.perf_counter() - t0, cpu_seconds(proc.pid) - cpu0
        conn.close()
        return wall, cpu
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)


# --- runs ------------------------------------------------------------------------------------

def one_run(template: Path, token: str, parcels: list[dict], n: int, port: int, tag: str,
            new_id: Callable[[], str]) -> dict[str, float]:
    """Push ``n`` new samples into a fresh copy of the template, pull everything, raw-insert the same rows."""
    instance = Path(tempfile.mkdtemp(prefix="fieldsvc-bench-sync-run-"))
    try:
        shutil.copyfile(template, instance / "fieldsvc.db")
        records = records_for(parcels, n, tag, new_id)
        server = start_server(instance, port)
        try:
            warm_up(port, token, records_for(parcels, BATCH, f"W{tag}", new_id))
            cpu0 = cpu_seconds(server.pid)
            push_s, statuses = push_all(port, token, records)
            cpu1 = cpu_seconds(server.pid)
            pull_s, changes = pull_all(port, token)
            cpu2 = cpu_seconds(server.pid)
        finally:
            server.terminate()
            server.wait(10)
        assert statuses == {"applied": n}, statuses
        raw_s = raw_baseline(instance / "fieldsvc.db", records)
        return {"push_s": push_s, "push_cpu_s": cpu1 - cpu0, "pull_s": pull_s, "pull_cpu_s": cpu2 - cpu1,
                "changes": changes, "raw_s": raw_s}
    finally:
        shutil.rmtree(instance, ignore_errors=True)


def growth_check(template: Path, token: str, parcels: list[dict], sizes: dict[str, int], n: int, rounds: int,
                 port: int, new_id: Callable[[], str]) -> dict[str, dict[str, float]]:
    """Push cost per record into stores already holding each of ``sizes`` samples.

    Both servers run at once and the pushes alternate between them (``rounds`` of ``n`` records
    each), so a slow spell of a shared machine hits both sides of the ratio alike."""
    instances = {name: Path(tempfile.mkdtemp(prefix=f"fieldsvc-bench-sync-{name}-")) for name in sizes}
    servers: dict[str, subprocess.Popen] = {}
    try:
        out: dict[str, dict[str, Any]] = {}
        for i, (name, stored) in enumerate(sizes.items()):
            shutil.copyfile(template, instances[name] / "fieldsvc.db")
            t0 = time.perf_counter()
            fill(instances[name] / "fieldsvc.db", stored, parcels, new_id)
            out[name] = {"fill_s": time.perf_counter() - t0, "us": [], "cpu_us": []}
            servers[name] = start_server(instances[name], port + 2 * i)
            warm_up(port + 2 * i, token, records_for(parcels, BATCH, f"W{name}", new_id))
        for r in range(rounds):
            for i, name in enumerate(sizes):
                records = records_for(parcels, n, f"G{name}{r}", new_id)
                cpu0 = cpu_seconds(servers[name].pid)
                push_s, statuses = push_all(port + 2 * i, token, records)
                assert statuses == {"applied": n}, statuses
                out[name]["us"].append(push_s / n * 1e6)
                out[name]["cpu_us"].append((cpu_seconds(servers[name].pid) - cpu0) / n * 1e6)
        for server in servers.values():
            server.terminate()
            server.wait(10)
        return {name: {"fill_s": got["fill_s"], "push_us_per_record": statistics.median(got["us"]),
                       "push_cpu_us_per_record": statistics.median(got["cpu_us"]),
                       "push_us_per_round": [round(x, 1) for x in got["us"]],
                       "raw_us_per_row": raw_baseline(instances[name] / "fieldsvc.db",
                                                      records_for(parcels, n, f"{name}raw", new_id), keep=True)
                       / n * 1e6}
                for name, got in out.items()}
    finally:
        for server in servers.values():
            if server.poll() is None:
                server.kill()
        for folder in instances.values():
            shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--large", type=int, default=1_000_000, help="store size for the growth check (0: skip)")
    parser.add_argument("--growth-records", type=int, default=5_000, help="records per push in the growth check")
    parser.add_argument("--growth-rounds", type=int, default=5, help="alternating pushes into each store")
    parser.add_argument("--no-pouchdb", action="store_true")
    parser.add_argument("--ids", choices=("v7", "v4"), default="v7",
                        help="sample ids as our clients make them (v7, time-ordered) or random (v4, as ODK Collect)")
    parser.add_argument("--port", type=int, default=18765)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="fieldsvc-bench-sync-"))
    try:
        token, parcels = setup(home)
        template = home / "template.db"
        shutil.copyfile(home / "fieldsvc.db", template)
        new_id = new_sample_id if args.ids == "v7" else (lambda: str(uuid.uuid4()))
        runs = [one_run(template, token, parcels, args.records, args.port, f"R{i}", new_id) for i in range(args.runs)]
        binary = None if args.no_pouchdb else pouchdb_binary()
        pouch: dict[str, list[tuple[float, float]]] = {"disk": [], "memory": []}
        if binary is not None:
            for i in range(args.runs):
                for store in pouch:
                    docs = records_for(parcels, args.records, f"D{store}{i}", new_id)
                    got = pouchdb_push(binary, args.port + 1, docs, in_memory=store == "memory")
                    if got is not None:
                        pouch[store].append(got)
        steps = breakdown(records_for(parcels, 2000, "S"), parcels)
        growth: dict[str, dict[str, float]] = {}
        if args.large:
            growth = growth_check(template, token, parcels, {"small": 10_000, "large": args.large},
                                  args.growth_records, args.growth_rounds, args.port, new_id)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(report(args, runs, pouch, steps, growth))


def report(args: argparse.Namespace, runs: list[dict], pouch: dict[str, list[tuple[float, float]]],
           steps: dict[str, float],
           growth: dict[str, dict[str, float]]) -> str:
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    n = args.records
    push_rate, pull_rate, raw_rate = n / med["push_s"], med["changes"] / med["pull_s"], n / med["raw_s"]
    ratios = [(n / r["push_s"]) / (n / r["raw_s"]) for r in runs]
    lines = [f"runs {len(runs)} (medians); every run: a fresh store, {n} records pushed, then pulled, then the same"
             f" rows raw-inserted; sample ids {args.ids}",
             f"push   {push_rate:,.0f} records/s ({med['push_s'] / n * 1e6:.0f} µs/record wall, "
             f"{med['push_cpu_s'] / n * 1e6:.0f} µs/record server CPU; batches of {BATCH})  target ≥ 10,000",
             f"pull   {pull_rate:,.0f} changes/s ({med['pull_s'] / med['changes'] * 1e6:.0f} µs/change wall, "
             f"{med['pull_cpu_s'] / med['changes'] * 1e6:.0f} µs/change server CPU; pages of 1000)  target ≥ 20,000",
             f"raw    sqlite3.executemany of the same rows: {raw_rate:,.0f} rows/s",
             f"ratio  push / raw insert = {statistics.median(ratios):.3f} (per run: "
             + ", ".join(f"{x:.3f}" for x in ratios) + ")"]
    out = {"bench": "sync", "records": n, "runs": len(runs), "ids": args.ids, "push_records_per_s": round(push_rate),
           "push_us_per_record": round(med["push_s"] / n * 1e6, 1),
           "push_server_cpu_us_per_record": round(med["push_cpu_s"] / n * 1e6, 1),
           "pull_changes_per_s": round(pull_rate), "raw_insert_rows_per_s": round(raw_rate),
           "push_vs_raw": round(statistics.median(ratios), 4), "steps_us_per_record": steps,
           "targets": {"push_records_per_s": 10_000, "pull_changes_per_s": 20_000, "push_vs_pouchdb": 1.5,
                       "growth_1m_vs_10k": 1.5}}
    for store, label in (("disk", "default LevelDB store on disk"), ("memory", "--in-memory, for reference")):
        if not pouch.get(store):
            continue
        p_wall = statistics.median(w for w, _ in pouch[store])
        p_cpu = statistics.median(c for _, c in pouch[store])
        vs = p_wall / med["push_s"]
        lines.append(f"pouchdb-server {POUCHDB_VERSION} _bulk_docs ({label}): {n / p_wall:,.0f} docs/s "
                     f"({p_wall / n * 1e6:.0f} µs/doc wall, {p_cpu / n * 1e6:.0f} µs/doc server CPU); "
                     f"push / pouchdb = {vs:.2f}x" + ("  target ≥ 1.5x" if store == "disk" else ""))
        suffix = "" if store == "disk" else "_in_memory"
        out.update({f"pouchdb{suffix}_docs_per_s": round(n / p_wall), f"push_vs_pouchdb{suffix}": round(vs, 3)})
    if not any(pouch.values()):
        lines.append("pouchdb-server: skipped (npm missing, install failed or --no-pouchdb)")
    lines.append("where a record's time goes, in-process (µs/record): "
                 + ", ".join(f"{k} {v}" for k, v in steps.items()))
    if growth:
        small, large = growth["small"], growth["large"]
        g = large["push_us_per_record"] / small["push_us_per_record"]
        gc = large["push_cpu_us_per_record"] / small["push_cpu_us_per_record"]
        lines.append(f"growth push into 10,000 stored: {small['push_us_per_record']:.0f} µs/record "
                     f"({small['push_cpu_us_per_record']:.0f} CPU); into {args.large:,} stored: "
                     f"{large['push_us_per_record']:.0f} µs/record ({large['push_cpu_us_per_record']:.0f} CPU); "
                     f"growth {g:.2f}x wall, {gc:.2f}x CPU  target ≤ 1.5x  (raw insert {small['raw_us_per_row']:.0f}"
                     f" → {large['raw_us_per_row']:.0f} µs/row; fill took {large['fill_s']:.0f} s; pushes alternate,"
                     f" {args.growth_rounds} rounds of {args.growth_records:,})")
        out["growth"] = {"stored_small": 10_000, "stored_large": args.large, "small": small, "large": large,
                         "ratio_wall": round(g, 3), "ratio_cpu": round(gc, 3)}
    lines.append(json.dumps(out))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
