"""CLI: the demo county, backup and a tested restore."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import func, select

from fieldsvc.extensions import db
from fieldsvc.places.models import Parcel, Region


def test_demo_loads_a_county_with_accounts_and_device(app, client):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["demo", "--parcels", "2000", "--seed", "3"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Parcel)) == 2000
        levels = dict(db.session.execute(select(Region.level, func.count()).group_by(Region.level)).all())
    assert levels["county"] == 1 and levels["township"] == 12 and levels["village"] >= 300
    token = client.post("/api/v1/auth/token", json={"username": "official", "password": "demo-password"})
    assert token.status_code == 200
    headers = {"Authorization": f"Bearer {token.get_json()['token']}"}
    assert len(client.get("/api/v1/parcels?limit=1000", headers=headers).get_json()["items"]) == 1000
    samples = client.get("/api/v1/samples?limit=1000", headers=headers).get_json()["items"]
    assert len(samples) > 10
    assert {"complete", "awaiting_media"} <= {s["state"] for s in samples}  # the last photo never arrived
    assert any("low_accuracy" in s["flags"] for s in samples) and any("location_mismatch" in s["flags"]
                                                                      for s in samples)
    graded = [s for s in samples if s["state"] == "complete"][0]
    grade = client.get(f"/api/v1/grades/parcel/{graded['parcel']}", headers=headers).get_json()
    assert grade["verdict"] in ("qualified", "not_qualified")
    park = client.get("/api/v1/grades/farm-park/360129-P01", headers=headers).get_json()
    assert park["grade"] == "A"  # the lab re-tested the park's exceedances
    certificates = client.get("/api/v1/certificates?limit=100", headers=headers).get_json()["items"]
    assert {"valid", "revoked"} <= {c["status"] for c in certificates}
    again = runner.invoke(args=["demo", "--parcels", "400", "--if-empty"])
    assert again.exit_code == 0 and "skipping" in again.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Parcel)) == 2000


def test_backup_then_restore_brings_back_the_data(app, client, county, tmp_path, database):
    if database["engine"] != "sqlite":
        pytest.skip("PostgreSQL backups use pg_dump/pg_restore (README); this exercises the SQLite path")
    runner = app.test_cli_runner()
    backup = tmp_path / "backup.db"
    result = runner.invoke(args=["backup", str(backup)])
    assert result.exit_code == 0, result.output
    with sqlite3.connect(backup) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM parcels").fetchone()[0] == len(county.parcels)
    code = county.parcels[0]["properties"]["code"]
    with app.app_context():
        db.session.execute(db.delete(Parcel).where(Parcel.code == code))  # simulate loss
        db.session.commit()
    result = runner.invoke(args=["restore", str(backup), "--yes"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        db.session.remove()
        assert db.session.scalar(select(func.count()).select_from(Parcel)) == len(county.parcels)
        assert db.session.scalar(select(Parcel.code).where(Parcel.code == code)) == code


def test_restore_refuses_a_corrupt_file(app, tmp_path, database):
    if database["engine"] != "sqlite":
        pytest.skip("SQLite restore")
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    result = app.test_cli_runner().invoke(args=["restore", str(bad), "--yes"])
    assert result.exit_code != 0


def test_postgres_backup_uses_pg_dump(app, tmp_path, database):
    if database["engine"] != "postgresql":
        pytest.skip("PostgreSQL backup")
    import shutil

    if shutil.which("pg_dump") is None:
        pytest.skip("pg_dump not installed")
    target = tmp_path / "pg.dump"
    result = app.test_cli_runner().invoke(args=["backup", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_bytes()[:5] == b"PGDMP"


def test_demo_never_prints_the_device_token_and_keeps_its_link_private(app):
    import os
    import stat
    from pathlib import Path

    result = app.test_cli_runner().invoke(args=["demo", "--parcels", "400", "--seed", "5"])
    assert result.exit_code == 0, result.output
    link = Path(app.instance_path) / "demo-device-link.txt"
    text = link.read_text()
    token = text.split("token=")[1].strip()
    assert token.startswith("fsd_") and token not in result.output
    assert stat.S_IMODE(os.stat(link).st_mode) == 0o600
