"""Sync throughput: push records/s and pull changes/s over HTTP, against raw sqlite3 in the same run.

Run: ``.venv/bin/python bench/sync.py [--records 10000] [--large 100000]``

- one gunicorn worker (one process, sync) on loopback, SQLite in a fresh instance folder under /tmp;
- push: batches of 500 new samples (one Idempotency-Key each) over one keep-alive connection;
- pull: the whole store page by page (limit 1000);
- baseline: the same sample rows inserted with ``sqlite3.executemany`` into the same table;
- where the time goes: the per-record steps timed in-process (JSON parse, validation, hashing,
  parcel distance, a marshmallow schema of the same shape for comparison);
- a larger store: push cost per record again after the store was filled to ``--large`` rows.

Prints figures and ratios, then one JSON line.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BATCH = 500


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


def records_for(parcels: list[dict], n: int, prefix: str) -> list[dict]:
    out = []
    for i in range(n):
        f = parcels[i % len(parcels)]
        ring = f["geometry"]["coordinates"][0][:-1]
        lat = sum(p[1] for p in ring) / len(ring)
        lon = sum(p[0] for p in ring) / len(ring)
        out.append({"type": "sample", "id": str(uuid.uuid4()), "base_version": None, "deleted": False, "data": {
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


def raw_baseline(db_path: Path, records: list[dict]) -> float:
    """The same rows straight into the samples table with executemany, one transaction."""
    target = Path(tempfile.mkdtemp()) / "raw.db"
    shutil.copyfile(db_path, target)
    conn = sqlite3.connect(target)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
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

    from fieldsvc.places.geometry import distance_to_geometry_m
    from fieldsvc.samples.content import content_hash
    from fieldsvc.samples.services import _inside
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
    timed("distance_shapely", lambda: [distance_to_geometry_m(c.clean["location"]["lon"],
                                                              c.clean["location"]["lat"],
                                                              geoms[c.clean["parcel"]]) for c in checked])
    timed("inside_check_used", lambda: [_inside(c.clean["location"]["lon"], c.clean["location"]["lat"],
                                                geoms[c.clean["parcel"]]) for c in checked])
    timed("flags", lambda: [(location_flags(1, 1, 4.5, 0, rules), time_flags(c.collected_at_utc, 0, now, rules))
                            for c in checked])
    schema = SampleData()
    timed("marshmallow_same_shape", lambda: [schema.load(r["data"]) for r in records])
    return out


def fill(db_path: Path, n: int, parcels: list[dict]) -> None:
    """Grow the store to ``n`` samples quickly (direct inserts with valid seqs)."""
    conn = sqlite3.connect(db_path)
    start = conn.execute("SELECT value FROM sequence_counters WHERE name='changes'").fetchone()[0]
    rows = [(str(uuid.uuid4()), f"FILL-{i:08d}", parcels[i % len(parcels)]["properties"]["code"], "360000",
             "complete", "[]", "2026-11-20T08:30:00+08:00", "2026-11-20 00:30:00", "2026-11-24 00:00:00", 0.0,
             28.0, 115.0, 4.5, 0, "{}", 0, 20, "composite", "paddy", None, "[]", "h" * 64, 1, start + i + 1, None,
             "fill", None, "2026-11-24 00:00:00", "2026-11-24 00:00:00", None) for i in range(n)]
    conn.executemany("INSERT INTO samples (id, code, parcel_code, county_code, state, flags, collected_at_raw, "
                     "collected_at, received_at, clock_skew_s, lat, lon, accuracy_m, mock_location, location_raw, "
                     "depth_top_cm, depth_bottom_cm, sample_type, land_use_observed, note, media, content_hash, "
                     "version, seq, device_pk, created_by, held_until, created_at, updated_at, deleted_at) VALUES ("
                     + ",".join("?" * 30) + ")", rows)
    conn.execute("UPDATE sequence_counters SET value = ? WHERE name='changes'", (start + n,))
    conn.commit()
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=100_000, help="store size for the second push (0: skip)")
    parser.add_argument("--port", type=int, default=18765)
    args = parser.parse_args()
    instance = Path(tempfile.mkdtemp(prefix="fieldsvc-bench-sync-"))
    try:
        token, parcels = setup(instance)
        records = records_for(parcels, args.records, "B")
        server = start_server(instance, args.port)
        try:
            push_s, statuses = push_all(args.port, token, records)
            pull_s, changes = pull_all(args.port, token)
        finally:
            server.terminate()
            server.wait(10)
        raw_s = raw_baseline(instance / "fieldsvc.db", records)
        steps = breakdown(records[:2000], parcels)
        large: dict[str, float] = {}
        if args.large:
            fill(instance / "fieldsvc.db", args.large, parcels)
            server = start_server(instance, args.port)
            try:
                more = records_for(parcels, args.records, "L")
                large_s, _ = push_all(args.port, token, more)
            finally:
                server.terminate()
                server.wait(10)
            large = {"store_rows": args.large + args.records, "push_records_per_s": round(args.records / large_s),
                     "push_us_per_record": round(large_s / args.records * 1e6, 1)}
    finally:
        shutil.rmtree(instance, ignore_errors=True)
    push_rate, pull_rate, raw_rate = args.records / push_s, changes / pull_s, args.records / raw_s
    print(f"push   {args.records} records in {push_s:.2f} s: {push_rate:,.0f} records/s "
          f"({push_s / args.records * 1e6:.0f} µs/record, batches of {BATCH}, statuses {statuses})")
    print(f"pull   {changes} changes in {pull_s:.2f} s: {pull_rate:,.0f} changes/s (pages of 1000)")
    print(f"raw    sqlite3.executemany of the same rows: {raw_rate:,.0f} rows/s")
    print(f"ratio  push / raw insert = {push_rate / raw_rate:.3f}  (raw is {raw_rate / push_rate:.1f}x faster)")
    print("where a record's time goes, in-process (µs/record): "
          + ", ".join(f"{k} {v}" for k, v in steps.items()))
    if large:
        print(f"large  store of {large['store_rows']:,} samples: push {large['push_records_per_s']:,} records/s "
              f"({large['push_us_per_record']} µs/record vs {push_s / args.records * 1e6:.0f} at 0→{args.records})")
    print(json.dumps({"bench": "sync", "records": args.records, "push_records_per_s": round(push_rate),
                      "pull_changes_per_s": round(pull_rate), "raw_insert_rows_per_s": round(raw_rate),
                      "push_vs_raw": round(push_rate / raw_rate, 4), "steps_us_per_record": steps,
                      "large_store": large, "targets": {"push_records_per_s": 10_000,
                                                        "pull_changes_per_s": 20_000}}))


if __name__ == "__main__":
    main()
