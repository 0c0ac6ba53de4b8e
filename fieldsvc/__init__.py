"""fieldsvc: field collection and traceability for soil geochemistry and green-food land."""

from __future__ import annotations

import gc
import os
import secrets
from pathlib import Path
from typing import Any, Mapping

from flask import Flask, has_request_context, request
from sqlalchemy import event

from . import dbutil, sqlite_checkpoint
from .config import engine_name, load_config, normalise_database_url
from .extensions import db, migrate

__version__ = "0.1.0"

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: defaults → ``FIELDSVC_*`` environment → ``config``."""
    cfg = load_config(config)
    engine_name(cfg["DATABASE_URL"])  # refuse unknown engines before anything else
    _tune_collector(cfg["GC_YOUNG_THRESHOLD"])
    app = Flask(__name__, instance_path=cfg["INSTANCE_PATH"])
    app.config.update(cfg)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config["SECRET_KEY"] = cfg["SECRET_KEY"] or _instance_secret(Path(app.instance_path))
    app.config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(cfg["DATABASE_URL"])
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = _engine_options(cfg)
    app.config["MAX_CONTENT_LENGTH"] = max(cfg["MAX_REQUEST_BYTES"], cfg["MAX_IMPORT_BYTES"])
    app.json.sort_keys = False
    app.json.ensure_ascii = False
    from .http import IdConverter

    app.url_map.converters["int"] = IdConverter  # before any route is added

    from . import models  # noqa: F401  (every table, for Alembic and the ORM)

    db.init_app(app)
    from .tiles.models import include_object

    migrate.init_app(app, db, directory=str(MIGRATIONS), render_as_batch=True, compare_type=True,
                     include_object=include_object)  # (engine-specific spatial objects are not models)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            _tune_sqlite(db.engine, cfg["SQLITE_BUSY_TIMEOUT_MS"], cfg["SQLITE_WAL_AUTOCHECKPOINT_PAGES"])
            _checkpoint_in_background(db.engine, cfg["SQLITE_CHECKPOINT_INTERVAL_S"],
                                      cfg["SQLITE_WAL_AUTOCHECKPOINT_PAGES"])

    _register_blueprints(app)
    _register_event_chain(app)
    from .http import register_error_handlers
    from .ops.observability import init_observability

    register_error_handlers(app)
    init_observability(app)
    from .compression import init_compression

    init_compression(app)
    from .cli import register_cli
    from .grading.rules import use_added_packs

    use_added_packs(Path(app.instance_path) / "rule_packs")
    register_cli(app)
    return app


def _register_blueprints(app: Flask) -> None:
    """Every blueprint, in one visible list."""
    from .auth.views import bp as auth_bp
    from .certificates.public import api_bp as verify_bp
    from .certificates.public import bp as certificate_page_bp
    from .certificates.views import bp as certificates_bp
    from .console.views import bp as console_bp
    from .devices.views import bp as devices_bp
    from .exports.views import bp as exports_bp
    from .field.views import bp as field_bp
    from .grading.views import bp as grading_bp
    from .lab.views import bp as lab_bp
    from .media.views import bp as media_bp
    from .openrosa.views import bp as openrosa_bp
    from .openrosa.views import forms_bp
    from .ops.views import bp as ops_bp
    from .places.views import bp as places_bp
    from .samples.views import bp as samples_bp
    from .sync.views import bp as sync_bp
    from .sync.views import conflicts_bp
    from .tiles.assets import bp as maps_bp
    from .tiles.views import bp as tiles_bp

    for bp in (ops_bp, auth_bp, devices_bp, places_bp, samples_bp, sync_bp, conflicts_bp, media_bp,
               openrosa_bp, forms_bp, lab_bp, grading_bp, certificates_bp, certificate_page_bp, verify_bp,
               field_bp, console_bp, exports_bp, tiles_bp, maps_bp):
        app.register_blueprint(bp)


def _tune_collector(young: int) -> None:
    """Let the cyclic garbage collector run less often, once for the whole process.

    A sync push, a GeoJSON import or a grading run makes up to millions of short-lived rows and
    tuples and no reference cycles; at Python's default (a young collection every 700 container
    allocations) the collector took up to a third of their CPU. Set at start-up rather than
    switched off around bulk steps, so no request changes a process-wide switch and every thread
    keeps collecting. ``0`` leaves Python's default.
    """
    if young > 0:
        _, middle, old = gc.get_threshold()
        gc.set_threshold(young, middle, old)


def _register_event_chain(app: Flask) -> None:
    """What follows every write (parcels imported → link held samples → re-grade → revoke, ...):
    the whole chain is listed in ``fieldsvc/handlers.py``."""
    from .handlers import register

    register(app)


def _engine_options(cfg: Mapping[str, Any]) -> dict[str, Any]:
    if engine_name(cfg["DATABASE_URL"]) == "sqlite":
        return {"connect_args": {"timeout": cfg["SQLITE_BUSY_TIMEOUT_MS"] / 1000, "check_same_thread": False}}
    return {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 10}


SQLITE_PAGE_SIZE = 8192


def _tune_sqlite(engine: Any, busy_timeout_ms: int, checkpoint_pages: int) -> None:
    """WAL, foreign keys, a busy timeout, the WAL checkpoint interval, and BEGIN IMMEDIATE for writes.

    A checkpoint copies every page the WAL holds into the database file and syncs it; with
    SQLite's default (every 1,000 pages, 4 MB) a sync push of 500 new samples triggered one
    about every other request, and index pages that several pushes dirtied were copied once per
    checkpoint each time. 10,000 pages (40 MB of WAL) cut the raw write cost of a batch by ~25 %.

    A new database gets 8 KiB pages (SQLite's default is 4 KiB): a parcel's estimated grade row
    is ~1.4 KB, of which a 4 KiB page holds two and wastes a quarter; 8 KiB pages hold five, and
    a 1,000,000-parcel county run wrote ~10 % fewer bytes and ran ~3-4 s faster (measured in
    pairs on copies of one database converted with VACUUM). A database made before keeps its page size.

    pysqlite's own transaction handling is turned off (the SQLAlchemy-documented
    workaround) so that savepoints work and a write request takes the write lock
    at its start, instead of failing with "database is locked" when it upgrades.
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")  # takes effect on a new, empty database only
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA wal_autocheckpoint={int(checkpoint_pages)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection):
        reading = has_request_context() and request.method in READ_METHODS
        connection.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")


_COMMITTED = "fieldsvc.committed"  # a pooled connection's info: it committed since it was checked out


def _checkpoint_in_background(engine: Any, interval_s: float, checkpoint_pages: int) -> None:
    """After each commit, wake this process's checkpoint thread for the database file
    (``fieldsvc.sqlite_checkpoint``); ``interval_s`` 0 leaves checkpoints to SQLite alone.

    A connection is marked as checkpointed by the thread (``dbutil.defer_checkpoint`` may then
    turn SQLite's own checkpoint off for one transaction; ``checkpoint_pages`` is what it gets
    back)."""
    path = engine.url.database
    if not interval_s or not path or path == ":memory:" or path.startswith("file:"):
        return
    path = os.path.abspath(path)

    @event.listens_for(engine, "connect")
    def _threaded(_dbapi_connection, record):
        record.info[dbutil.CHECKPOINT_THREAD] = True

    @event.listens_for(engine, "commit")
    def _commit(connection):
        connection.info[_COMMITTED] = True

    @event.listens_for(engine, "checkin")
    def _checkin(dbapi_connection, record):
        """The thread is woken once the commit is over: the engine's ``commit`` event comes before
        SQLite commits, and a checkpoint started then (20 ms later) found a county run's commit,
        seconds long, still writing, copied nothing, and left the WAL to the next commit. A
        connection whose transaction left its checkpoint to the thread gets SQLite's back."""
        if record.info.pop(dbutil.AUTOCHECKPOINT_OFF, False):
            dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={int(checkpoint_pages)}")
        if record.info.pop(_COMMITTED, False):
            sqlite_checkpoint.notify(path, interval_s)


def _instance_secret(instance: Path) -> str:
    """A secret key generated once into the instance folder (mode 0600)."""
    path = instance / "secret_key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()  # another process made it first
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32))
    return path.read_text().strip()
