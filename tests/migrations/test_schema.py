"""The schema comes only from Alembic: upgrade from empty matches the models, and downgrade undoes it."""

from __future__ import annotations

import os

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text

from fieldsvc import create_app
from fieldsvc.extensions import db
from fieldsvc.tiles.models import include_object
from tests.conftest import PG_URL, TEST_CONFIG, pg_reachable

MIGRATION_DB = "fieldsvc_migrations_test"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    reason = pg_reachable(PG_URL)
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL unreachable with CI=true: {reason}")
        pytest.skip(reason)
    admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {MIGRATION_DB} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {MIGRATION_DB}"))
    yield PG_URL.rsplit("/", 1)[0] + "/" + MIGRATION_DB
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {MIGRATION_DB} WITH (FORCE)"))
    admin.dispose()


def test_upgrade_from_empty_matches_models_and_downgrade_removes_all(empty_database_url, tmp_path):
    app = create_app({**TEST_CONFIG, "DATABASE_URL": empty_database_url, "INSTANCE_PATH": str(tmp_path / "i")})
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            opts = {"compare_type": True, "include_object": include_object}
            diff = compare_metadata(MigrationContext.configure(conn, opts=opts), db.metadata)
            assert diff == [], f"models and migrations disagree: {diff}"
            tables = set(inspect(conn).get_table_names())
            assert {"users", "parcels", "audit_events", "devices"} <= tables
            assert conn.execute(text("SELECT value FROM sequence_counters WHERE name='changes'")).scalar() == 0
        downgrade(revision="base")
        with db.engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
        db.engine.dispose()


def test_sqlite_database_runs_in_wal_with_foreign_keys(app):
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("SQLite pragmas")
    with app.app_context(), db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == app.config["SQLITE_BUSY_TIMEOUT_MS"]
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 10_000
        assert conn.exec_driver_sql("PRAGMA page_size").scalar() == 8192  # a new database's pages


def test_sqlite_commits_wake_a_background_checkpoint_unless_turned_off(app_config, tmp_path):
    """``SQLITE_CHECKPOINT_INTERVAL_S``: a write request's commit starts this process's checkpoint
    thread for the database file, which then copies the WAL into it; 0 leaves it to SQLite."""
    import os
    import time

    from fieldsvc import create_app, sqlite_checkpoint

    if not app_config["DATABASE_URL"].startswith("sqlite"):
        pytest.skip("SQLite checkpoints")
    path = os.path.abspath(app_config["DATABASE_URL"].removeprefix("sqlite:///"))
    key = (os.getpid(), path)
    for interval, expect_thread in ((0, False), (0.01, True)):
        app = create_app({**app_config, "SQLITE_CHECKPOINT_INTERVAL_S": interval})
        with app.app_context():
            db.session.execute(text("UPDATE sequence_counters SET value = value + 1"))
            db.session.commit()
            worker = sqlite_checkpoint._running.get(key)
            assert (worker is not None) is expect_thread
            if worker is not None:
                deadline = time.monotonic() + 5
                while worker.checkpoints == 0 and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert worker.checkpoints >= 1
            db.session.remove()
            db.engine.dispose()


def test_the_checkpoint_thread_is_woken_once_the_commit_is_over(app_config, monkeypatch):
    """The thread is told after SQLite has committed (as the connection returns to the pool), not
    from the engine's ``commit`` event, which comes first: a checkpoint started then found a long
    commit still writing, copied nothing, and left its WAL for the next commit."""
    import os
    import sqlite3

    from fieldsvc import sqlite_checkpoint

    if not app_config["DATABASE_URL"].startswith("sqlite"):
        pytest.skip("SQLite checkpoints")
    path = os.path.abspath(app_config["DATABASE_URL"].removeprefix("sqlite:///"))
    seen = []

    def notify(p, interval_s, idle_s=10.0):  # what another connection sees when the thread is woken
        with sqlite3.connect(p) as other:
            seen.append((p, other.execute("SELECT value FROM sequence_counters WHERE name = 'probe'").fetchall()))

    monkeypatch.setattr(sqlite_checkpoint, "notify", notify)
    app = create_app({**app_config, "SQLITE_CHECKPOINT_INTERVAL_S": 0.01})
    with app.app_context():
        db.session.execute(text("INSERT INTO sequence_counters (name, value) VALUES ('probe', 7)"))
        db.session.commit()
        assert seen == [(path, [(7,)])]
        db.session.execute(text("SELECT 1"))  # a transaction that commits nothing wakes nothing
        db.session.rollback()
        assert len(seen) == 1
        db.session.remove()
        db.engine.dispose()


def test_a_county_run_leaves_its_commit_checkpoint_to_the_thread_and_gets_the_setting_back(app_config):
    """``dbutil.defer_checkpoint``: inside the transaction SQLite's automatic checkpoint is off
    (the thread copies the WAL while the caller goes on), and the pooled connection has it back
    once the transaction is over; with no thread (interval 0) it stays on."""
    from fieldsvc import dbutil

    if not app_config["DATABASE_URL"].startswith("sqlite"):
        pytest.skip("SQLite checkpoints")
    for interval, inside in ((0.01, 0), (0, 10_000)):
        app = create_app({**app_config, "SQLITE_CHECKPOINT_INTERVAL_S": interval})
        with app.app_context():
            dbutil.defer_checkpoint()
            assert db.session.execute(text("PRAGMA wal_autocheckpoint")).scalar() == inside
            raw = db.session.connection().connection.dbapi_connection
            db.session.commit()
            assert db.session.connection().connection.dbapi_connection is raw  # the same pooled connection
            assert db.session.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 10_000
            db.session.remove()
            db.engine.dispose()
