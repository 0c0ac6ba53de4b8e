"""What the fast county run must still do: tell certificates past its listed changes, count every member."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from fieldsvc.extensions import db
from fieldsvc.grading import parallel
from tests.api.test_grading_api import CLEAN, FAIL_CD, grade, parcels_by, put_results, put_sample
from tests.api.test_grading_rollup import assert_maintained_equals_full_recompute, run_county


def test_run_past_its_listed_changes_still_tells_certificates(app, client, official, county, monkeypatch):
    from fieldsvc.certificates import services as certificates
    from fieldsvc.grading import gradepass, runs

    village = county.regions[-1]["code"]
    in_village = parcels_by(county, village=village)[:3]
    assert len(in_village) == 3
    sids = [put_sample(app, p["code"]) for p in in_village]
    for sid in sids:
        put_results(app, sid, CLEAN)
    monkeypatch.setattr(gradepass, "CHANGED_CAP", 1)  # the pass keeps the changes, the run lists them
    monkeypatch.setattr(runs, "CHANGED_CAP", 1)
    first = run_county(client, official, county)
    assert len(first["changed"]) == 1 and first["counts"]["changed"] == 3  # listed: capped; counted: all
    calls = []
    monkeypatch.setattr(certificates, "on_grade_changed", lambda *a: calls.append(a) or [])
    # every subject counts as certified, so the hook is offered every change (``certified_subjects``
    # passes on only the subjects holding a certificate or land label)
    monkeypatch.setattr(certificates, "certified_subjects", lambda subjects: set(subjects))
    for sid in sids:
        put_results(app, sid, FAIL_CD, version=2)
    second = run_county(client, official, county)
    assert second["counts"]["changed"] == 3 and second["counts"]["not_qualified"] == 3
    assert len(second["changed"]) == 1
    told = {c[1] for c in calls if c[0] == "parcel"}
    assert told == {p["code"] for p in in_village}  # the two past the cap too
    for p in in_village:  # each superseded row points at the new one: one current grade, not qualified
        body = grade(client, official, "parcel", p["code"]).get_json()
        assert body["verdict"] == "not_qualified" and body["explanation"]["reproduced"] is True
    assert_maintained_equals_full_recompute(app, county)
    third = run_county(client, official, county)
    assert third["counts"]["changed"] == 0 and third["counts"]["areas_changed"] == 0


def test_county_run_counts_members_it_did_not_grade(app, client, official, county):
    """A member row of the county whose parcel the run did not see still counts (the sums are of members)."""
    from fieldsvc.grading import queries
    from fieldsvc.grading.models import RollupMember

    p = parcels_by(county, village=county.regions[-1]["code"])[0]
    put_results(app, put_sample(app, p["code"]), CLEAN)
    run_county(client, official, county)
    with app.app_context():
        before = queries.maintained_sums("county", county.county, "green_food_soil")
        db.session.add(RollupMember(rule_pack="green_food_soil", parcel_code="GHOST-1", village_code=p["village"],
                                    farm_park_code=None, county_code=county.county, area_m2=1234.5,
                                    verdict="qualified", qualified=True, strict_control=False))
        db.session.commit()
    run_county(client, official, county)
    with app.app_context():
        after = queries.maintained_sums("county", county.county, "green_food_soil")
        members = db.session.scalar(select(func.count()).select_from(RollupMember).where(
            RollupMember.county_code == county.county))
    assert after.parcel_count == before.parcel_count + 1 == members
    assert after.total_area - before.total_area == Decimal("1234.5")
    assert after.qualified_area - before.qualified_area == Decimal("1234.5")


def _stored_run(app, run) -> dict:
    """What a run stored, without ids and clocks: grade rows, members, sums, counts, listed changes."""
    rows = db.session.execute(db.text(
        "SELECT subject_type, subject_code, county_code, rule_pack_version, grade, verdict, qualified, "
        "strict_control, limiting, explanation, fingerprint, inputs, tested_on, run_id IS NULL, "
        "superseded_by IS NULL FROM grades ORDER BY subject_type, subject_code, id")).all()
    members = db.session.execute(db.text("SELECT * FROM rollup_members ORDER BY rule_pack, parcel_code")).all()
    sums = db.session.execute(db.text(
        "SELECT subject_type, subject_code, rule_pack, total_area, graded_area, qualified_area, parcel_count, "
        "graded_count, qualified_count, strict_count FROM rollup_sums ORDER BY 1, 2, 3")).all()
    changed = [{k: v for k, v in c.items() if k != "grade_id"} for c in run.changed]
    return {"grades": [tuple(r) for r in rows], "members": [tuple(m) for m in members],
            "sums": [tuple(s) for s in sums], "counts": run.counts, "changed": changed,
            "estimation": {k: v for k, v in (run.estimation or {}).items() if k != "models"}}


def test_parallel_run_stores_what_a_serial_run_stores(app, client, official, county, monkeypatch):
    """Workers read and evaluate ahead (SQLite in WAL mode); the run must write exactly what a serial one does."""
    from fieldsvc.grading import runs

    codes = [p["code"] for p in parcels_by(county)]
    for i, code in enumerate(codes[:8]):
        put_results(app, put_sample(app, code), FAIL_CD if i % 3 == 0 else CLEAN)
    run_county(client, official, county)  # a previous run: current grades and members to compare against
    for i, code in enumerate(codes[:12]):  # changed results, new samples, an incomplete one
        if i < 4:
            put_results(app, put_sample(app, code), CLEAN if i % 2 else FAIL_CD)
        elif i >= 8:
            put_sample(app, code, state="collected" if i == 11 else "complete")
    parallel_calls = []
    real = parallel.read_ahead
    monkeypatch.setattr(parallel, "read_ahead", lambda *a: parallel_calls.append(a) or real(*a))
    monkeypatch.setattr(runs, "CHUNK", 3)  # several chunks, two workers
    stored = []
    for workers in (0, 2):
        with app.app_context():
            db.session.remove()  # outside any transaction, as the CLI calls it
            run = runs.run_grading("county", county.county, None, workers=workers)
            db.session.flush()
            stored.append(_stored_run(app, run))
            engine = db.engine.dialect.name
            db.session.rollback()
    assert len(parallel_calls) == (1 if engine == "sqlite" else 0)  # PostgreSQL runs stay serial
    serial, in_parallel = stored
    assert serial["counts"]["changed"] > 0 and serial["counts"]["not_qualified"] > 0
    explanations = [json.loads(r[9]) if isinstance(r[9], str) else r[9] for r in serial["grades"]]
    assert any(e.get("basis") == "estimated" for e in explanations)  # the workers estimated too
    assert serial["estimation"]["estimated"] > 0  # and counted it, batch by batch, as a serial run does
    assert in_parallel == serial


def test_parallel_run_is_serial_inside_a_transaction(app, county, monkeypatch):
    """A caller's uncommitted changes are invisible to worker processes: inside a transaction the run is serial."""
    from fieldsvc.grading import runs

    monkeypatch.setattr(runs, "CHUNK", 2)
    calls = []
    monkeypatch.setattr(parallel, "read_ahead", lambda *a: calls.append(a) or iter(()))
    with app.app_context():
        db.session.remove()
        db.session.execute(db.text("SELECT 1"))  # the caller's transaction is open
        run = runs.run_grading("county", county.county, None, workers=2)
        assert run.counts["parcels"] == len(county.parcels)
        db.session.rollback()
    assert calls == []


def test_a_failing_worker_fails_the_run(tmp_path):
    from fieldsvc.grading.rules import load_pack

    pack = load_pack("green_food_soil")
    chunks = parallel.read_ahead(str(tmp_path / "missing" / "x.db"), pack, None, [["P1"], ["P2"]], 2)
    with pytest.raises(RuntimeError, match="grading worker 0 failed"):
        list(chunks)


def test_cli_grade_uses_workers_on_sqlite(app, client, official, county, monkeypatch):
    from fieldsvc.grading import runs

    put_results(app, put_sample(app, parcels_by(county)[0]["code"]), CLEAN)
    monkeypatch.setattr(runs, "CHUNK", 2)
    calls = []
    real = parallel.read_ahead
    monkeypatch.setattr(parallel, "read_ahead", lambda *a: calls.append(a[4]) or real(*a))
    result = app.test_cli_runner().invoke(args=["grade", "--county", county.county, "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert f"parcels={len(county.parcels)}" in result.output and "qualified=1" in result.output
    with app.app_context():
        engine = db.engine.dialect.name
    assert calls == ([2] if engine == "sqlite" else [])
    assert_maintained_equals_full_recompute(app, county)
    serial = app.test_cli_runner().invoke(args=["grade", "--county", county.county, "--workers", "0"])
    assert serial.exit_code == 0 and "changed=0" in serial.output and len(calls) <= 1


def test_the_fork_server_preloads_the_workers_module_from_any_working_directory(tmp_path, monkeypatch):
    """Python 3.11's fork server imports its preload with its own path (the working directory
    first) and skips a module it cannot import: started from elsewhere, every worker imported
    fieldsvc, NumPy and SciPy again. ``warm`` starts it with the package's root on its path."""
    import multiprocessing
    import os
    from multiprocessing import forkserver

    forkserver._forkserver._stop()  # a server started by an earlier test, from the repository
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    try:
        parallel.warm()
        assert "PYTHONPATH" not in os.environ  # set only while the server started
        check = "import sys; sys.exit(0 if 'fieldsvc.grading.parallel' in sys.modules else 3)"
        child = multiprocessing.get_context("forkserver").Process(target=exec, args=(check,))
        child.start()
        child.join(60)
        assert child.exitcode == 0  # forked from a server that had imported it
    finally:
        forkserver._forkserver._stop()  # the next run starts one from its own directory
