"""The device's local SQLite store (``<data>/outbox.db``): outbox, batches, media, pulled tables.

Everything that must survive a restart lives here, and every step that changes two things
changes them in one transaction: a batch and its records' ``sent`` status; a push answer and
the batch's removal; a pulled page and its cursor. So a phone that dies at any point resumes
where it was, with the same ``Idempotency-Key`` for the batch it was sending.

Record statuses: ``pending`` (not yet sent), ``sent`` (in a batch whose answer has not
arrived), then the server's verdict ``applied | duplicate | held | merged | conflict |
rejected`` with its ``code`` and ``errors``.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL DEFAULT 'sample',
    data TEXT NOT NULL,
    base_version INTEGER,
    deleted INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'pending',
    batch_key TEXT,
    server_version INTEGER,
    server_state TEXT,
    code TEXT,
    errors TEXT,
    conflict_id INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_records_status ON records (status, seq);
CREATE TABLE IF NOT EXISTS batches (
    key TEXT PRIMARY KEY,
    body BLOB NOT NULL,
    ids TEXT NOT NULL,
    created_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS media (
    sha256 TEXT PRIMARY KEY,
    bytes INTEGER NOT NULL,
    mime TEXT NOT NULL,
    path TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    uploaded INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS record_media (
    record_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (record_id, sha256, name)
);
"""

# Tables filled by pull, one per change type; ``id`` is the code for places, the UUID for samples,
# ``<plan number>:<parcel>`` for planned points (open or closed; a withdrawn one comes as a delete).
PULLED = {"region": "regions", "farm_park": "farm_parks", "parcel": "parcels", "assignment": "assignments",
          "sample": "samples", "planned_point": "planned_points"}
PULLED_SCHEMA = "".join(
    f"CREATE TABLE IF NOT EXISTS {t} (id TEXT PRIMARY KEY, version INTEGER, data TEXT NOT NULL);\n"
    for t in PULLED.values())

DONE = ("applied", "duplicate", "held", "merged", "conflict", "rejected")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


class Outbox:
    """One device's store. Not thread-safe: one sync at a time per data dir."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.dir = Path(data_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "media").mkdir(exist_ok=True)
        self.path = self.dir / "outbox.db"
        fresh = not self.path.exists()
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        if fresh:
            os.chmod(self.path, 0o600)  # it holds the device token
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")  # a phone loses power; an answered batch must stay answered
        self.db.executescript(SCHEMA + PULLED_SCHEMA)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- meta -------------------------------------------------------------------------------

    def get(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set(self, key: str, value: str | None, conn: sqlite3.Connection | None = None) -> None:
        conn = conn or self.db
        if value is None:
            conn.execute("DELETE FROM meta WHERE key = ?", (key,))
        else:
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = "
                         "excluded.value", (key, value))

    # -- records ----------------------------------------------------------------------------

    def add_record(self, rid: str, data: Mapping[str, Any], media: Iterable[Mapping[str, Any]] = (),
                   base_version: int | None = None, deleted: bool = False) -> None:
        """A new outbox record and its media (already copied into the data dir), in one transaction."""
        stamp = now_iso()
        with self.tx() as c:
            c.execute("INSERT INTO records (id, data, base_version, deleted, created_at, updated_at) "
                      "VALUES (?, ?, ?, ?, ?, ?)", (rid, dumps(dict(data)), base_version, int(deleted), stamp, stamp))
            for m in media:
                c.execute("INSERT INTO media (sha256, bytes, mime, path, updated_at) VALUES (?, ?, ?, ?, ?) "
                          "ON CONFLICT(sha256) DO NOTHING", (m["sha256"], m["bytes"], m["mime"], m["path"], stamp))
                c.execute("INSERT OR IGNORE INTO record_media (record_id, sha256, name) VALUES (?, ?, ?)",
                          (rid, m["sha256"], m["name"]))

    def records(self, status: str | None = None) -> list[sqlite3.Row]:
        if status is None:
            return self.db.execute("SELECT * FROM records ORDER BY seq").fetchall()
        return self.db.execute("SELECT * FROM records WHERE status = ? ORDER BY seq", (status,)).fetchall()

    def record(self, rid: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM records WHERE id = ?", (rid,)).fetchone()

    def pending(self, limit: int) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM records WHERE status = 'pending' ORDER BY seq LIMIT ?",
                               (limit,)).fetchall()

    def counts(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.db.execute("SELECT status, count(*) FROM records GROUP BY status")}

    def reject_locally(self, rid: str, code: str, errors: Mapping[str, Any]) -> None:
        self.db.execute("UPDATE records SET status = 'rejected', code = ?, errors = ?, batch_key = NULL, "
                        "updated_at = ? WHERE id = ?", (code, dumps(dict(errors)), now_iso(), rid))

    # -- batches ----------------------------------------------------------------------------

    def open_batch(self, key: str, body: bytes, ids: list[str]) -> None:
        """Persist the batch (its key and exact body) and mark its records ``sent``, before sending."""
        with self.tx() as c:
            c.execute("INSERT INTO batches (key, body, ids, created_at) VALUES (?, ?, ?, ?)",
                      (key, body, dumps(ids), now_iso()))
            c.executemany("UPDATE records SET status = 'sent', batch_key = ?, updated_at = ? WHERE id = ?",
                          [(key, now_iso(), rid) for rid in ids])

    def open_batches(self) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM batches ORDER BY created_at, rowid").fetchall()

    def touch_batch(self, key: str) -> None:
        self.db.execute("UPDATE batches SET attempts = attempts + 1 WHERE key = ?", (key,))

    def close_batch(self, key: str, outcomes: Iterable[Mapping[str, Any]]) -> None:
        """Store every record's verdict and drop the batch, in one transaction."""
        stamp = now_iso()
        with self.tx() as c:
            for o in outcomes:
                c.execute("UPDATE records SET status = ?, server_version = COALESCE(?, server_version), "
                          "server_state = COALESCE(?, server_state), code = ?, errors = ?, conflict_id = ?, "
                          "batch_key = NULL, updated_at = ? WHERE id = ? AND batch_key = ?",
                          (o["status"], o.get("version"), o.get("state"), o.get("code"),
                           dumps(o["errors"]) if o.get("errors") else None, o.get("conflict_id"), stamp, o["id"],
                           key))
            # a record the answer did not mention goes out again (in a new batch)
            c.execute("UPDATE records SET status = 'pending', batch_key = NULL WHERE batch_key = ?", (key,))
            c.execute("DELETE FROM batches WHERE key = ?", (key,))

    def abandon_batch(self, key: str) -> list[str]:
        """Drop a batch the server refused as a whole; its records go back to ``pending``."""
        with self.tx() as c:
            row = c.execute("SELECT ids FROM batches WHERE key = ?", (key,)).fetchone()
            c.execute("UPDATE records SET status = 'pending', batch_key = NULL WHERE batch_key = ?", (key,))
            c.execute("DELETE FROM batches WHERE key = ?", (key,))
        return json.loads(row[0]) if row else []

    # -- media ------------------------------------------------------------------------------

    def media_to_upload(self) -> list[sqlite3.Row]:
        """Blobs not yet on the server, named by at least one record the server did not reject."""
        return self.db.execute(
            "SELECT m.* FROM media m WHERE m.status != 'done' AND EXISTS (SELECT 1 FROM record_media rm "
            "JOIN records r ON r.id = rm.record_id WHERE rm.sha256 = m.sha256 AND r.status != 'rejected') "
            "ORDER BY m.rowid").fetchall()

    def releasable_media(self) -> list[sqlite3.Row]:
        """Blobs the server holds whole and a sample it stored names (``applied | duplicate |
        merged | held``), with no record naming them still waiting or in conflict: their local
        copies are no longer needed."""
        return self.db.execute(
            "SELECT m.* FROM media m WHERE m.status = 'done' AND EXISTS (SELECT 1 FROM record_media rm "
            "JOIN records r ON r.id = rm.record_id WHERE rm.sha256 = m.sha256 "
            "AND r.status IN ('applied', 'duplicate', 'merged', 'held')) AND NOT EXISTS (SELECT 1 "
            "FROM record_media rm JOIN records r ON r.id = rm.record_id WHERE rm.sha256 = m.sha256 "
            "AND r.status IN ('pending', 'sent', 'conflict')) ORDER BY m.rowid").fetchall()

    def set_media(self, sha256: str, status: str, uploaded: int, error: str | None = None) -> None:
        self.db.execute("UPDATE media SET status = ?, uploaded = ?, error = ?, updated_at = ? WHERE sha256 = ?",
                        (status, uploaded, error, now_iso(), sha256))

    def media(self) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM media ORDER BY rowid").fetchall()

    # -- pulled tables ----------------------------------------------------------------------

    def apply_changes(self, changes: Iterable[Mapping[str, Any]], cursor: str) -> int:
        """Apply one pulled page and store its cursor, atomically. Unknown types are skipped."""
        n = 0
        with self.tx() as c:
            for ch in changes:
                table = PULLED.get(ch.get("type"))  # type: ignore[arg-type]
                if table is None or ch.get("id") is None:
                    continue
                key = str(ch["id"])
                if ch.get("deleted"):
                    c.execute(f"DELETE FROM {table} WHERE id = ?", (key,))
                else:
                    c.execute(f"INSERT INTO {table} (id, version, data) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE "
                              "SET version = excluded.version, data = excluded.data",
                              (key, ch.get("version"), dumps(ch.get("data"))))
                if table == "samples" and not ch.get("deleted") and isinstance(ch.get("data"), Mapping):
                    c.execute("UPDATE records SET server_version = ?, server_state = ? WHERE id = ? "
                              "AND status NOT IN ('pending', 'sent')",
                              (ch.get("version"), ch["data"].get("state"), key))
                n += 1
            self.set("pull_cursor", cursor, c)
        return n

    def reset_pulled(self) -> None:
        """Forget everything pulled and the cursor (the server said the cursor expired)."""
        with self.tx() as c:
            for table in PULLED.values():
                c.execute(f"DELETE FROM {table}")
            self.set("pull_cursor", None, c)

    def pulled(self, kind: str) -> dict[str, dict[str, Any]]:
        table = PULLED[kind]
        return {r["id"]: json.loads(r["data"]) for r in self.db.execute(f"SELECT id, data FROM {table}")}
