"""Fixtures: an app per test on SQLite and on PostgreSQL, clients, accounts, a small county.

The schema is built once per engine with Alembic ``upgrade`` (never ``create_all``).
Each test then gets a clean database: a copy of the migrated SQLite file, or the
PostgreSQL tables truncated.
"""

from __future__ import annotations

import gc
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from werkzeug.serving import make_server

from fieldsvc import create_app
from fieldsvc.extensions import db

PG_URL = os.environ.get("FIELDSVC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
ENGINES = ("sqlite", "postgresql")
TEST_CONFIG = {
    "TESTING": True,
    "PASSWORD_HASH_PROFILE": "CHEAPEST",
    "DEMO": False,
    "PUBLIC_BASE_URL": "https://fieldsvc.example",
    "SECRET_KEY": "test-secret",
    "LOG_LEVEL": "WARNING",
}


def pg_reachable(url: str) -> str | None:
    """None when PostgreSQL answers, else the reason."""
    try:
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1),
                               connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure to connect means "unreachable" here
        return str(exc).splitlines()[0]


def migrate_to_head(url: str, instance: Path) -> None:
    app = create_app({**TEST_CONFIG, "DATABASE_URL": url, "INSTANCE_PATH": str(instance)})
    from flask_migrate import upgrade

    with app.app_context():
        upgrade()
        db.engine.dispose()


def reset_postgres(url: str) -> None:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session", params=ENGINES)
def database(request, tmp_path_factory):
    """A migrated database per engine: a template file for SQLite, the schema for PostgreSQL."""
    root = tmp_path_factory.mktemp(request.param)
    if request.param == "sqlite":
        template = root / "template.db"
        migrate_to_head(f"sqlite:///{template}", root / "instance")
        yield {"engine": "sqlite", "template": template}
        return
    reason = pg_reachable(PG_URL)
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL is unreachable at {PG_URL} and CI=true: {reason}")
        pytest.skip(f"PostgreSQL unreachable ({reason})")
    reset_postgres(PG_URL)
    migrate_to_head(PG_URL, root / "instance")
    engine = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        tables = [r[0] for r in conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname='public' "
            "AND tablename NOT IN ('alembic_version', 'spatial_ref_sys')"))]  # (PostGIS's own table stays)
    yield {"engine": "postgresql", "url": PG_URL, "admin_engine": engine, "tables": tables}
    engine.dispose()


def fresh_database_url(database: dict[str, Any], tmp_path: Path) -> str:
    if database["engine"] == "sqlite":
        target = tmp_path / "fieldsvc.db"
        shutil.copyfile(database["template"], target)
        return f"sqlite:///{target}"
    with database["admin_engine"].begin() as conn:
        # DELETE with triggers and FK checks off is ~20x faster than TRUNCATE for small tables.
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        for table in database["tables"]:
            conn.execute(text(f"DELETE FROM {table}"))
        conn.execute(text("INSERT INTO sequence_counters (name, value) VALUES ('changes', 0)"))
    return database["url"]


@pytest.fixture
def app_config(database, tmp_path) -> dict[str, Any]:
    return {**TEST_CONFIG, "DATABASE_URL": fresh_database_url(database, tmp_path),
            "INSTANCE_PATH": str(tmp_path / "instance")}


class _Draining:
    """WSGI wrapper that remembers the threads serving requests and, once closed, turns new ones away.

    Why: a browser keeps fetching (map tiles) after a test ends, and the server's request threads
    are daemons nobody joins. A request still running when the app's engine is disposed keeps its
    database connection, which is then collected during some later test. Werkzeug's development
    server may also skip a response's ``close()`` when the client resets the connection, so a count
    of open responses can stay above zero; waiting for the request threads themselves to end (the
    server closes every connection after one response) cannot be fooled that way.
    """

    def __init__(self, wsgi: Any) -> None:
        self.wsgi = wsgi
        self.closed = False
        self.threads: list[threading.Thread] = []
        self.lock = threading.Lock()

    def __call__(self, environ: dict, start_response: Any) -> Any:
        with self.lock:
            if self.closed:
                start_response("503 Service Unavailable", [("Connection", "close")])
                return [b""]
            self.threads.append(threading.current_thread())
        return self.wsgi(environ, start_response)

    def close_and_drain(self, timeout: float = 10.0) -> None:
        with self.lock:
            self.closed = True
            threads = [t for t in self.threads if t is not threading.current_thread()]
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        gc.collect()  # a response generator left unclosed in a cycle lets go of its connection now


@pytest.fixture
def live(app):
    """The app behind a real threaded HTTP server (real connections, real parallelism); its base URL."""
    gate = _Draining(app.wsgi_app)
    app.wsgi_app = gate
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)
    gate.close_and_drain()
    server.server_close()


@pytest.fixture
def app(app_config):
    app = create_app(app_config)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield


# --- accounts ---------------------------------------------------------------------------------

@dataclass
class Account:
    username: str
    role: str
    token: str
    password: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def make_account(app, client):
    """``make_account(role, county=None)`` → an Account with a fresh bearer token."""
    counter = {"n": 0}

    def make(role: str, county: str | None = None, username: str | None = None) -> Account:
        from fieldsvc.auth.services import create_user

        counter["n"] += 1
        username = username or f"{role}{counter['n']}"
        password = f"pw-{username}-secret"
        with app.app_context():
            create_user(username, password, role, county_code=county, config=app.config, actor="test")
            db.session.commit()
        resp = client.post("/api/v1/auth/token", json={"username": username, "password": password})
        assert resp.status_code == 200, resp.get_json()
        return Account(username, role, resp.get_json()["token"], password)

    return make


@pytest.fixture
def admin(make_account) -> Account:
    return make_account("admin")


@pytest.fixture
def official(make_account) -> Account:
    return make_account("official")


# --- a small county ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def small_county():
    from fieldsvc.places.demo_data import generate_county

    return generate_county(seed=7, parcels=60, townships=2, villages=12)


@pytest.fixture
def county(app, admin, small_county):
    """The small county loaded through the same services as the API (regions, parks, parcels)."""
    from fieldsvc.demo import load_places

    with app.app_context():
        load_places(small_county)
        db.session.commit()
    return small_county
