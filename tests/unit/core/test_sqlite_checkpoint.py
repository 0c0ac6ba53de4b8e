"""Background WAL checkpoints: commits wake a thread that copies the WAL into the database file."""

from __future__ import annotations

import shutil
import sqlite3
import time

from fieldsvc import sqlite_checkpoint


def _writer(path):
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")  # only the thread checkpoints
    conn.execute("CREATE TABLE IF NOT EXISTS t (n INTEGER)")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the empty table is in the file itself
    return conn


def _rows_in_main_file(path, tmp_path):
    """What the database file holds by itself, without its WAL."""
    copy = tmp_path / "main-only.db"
    shutil.copyfile(path, copy)
    return sqlite3.connect(copy).execute("SELECT count(*) FROM t").fetchone()[0]


def _wait(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
    return predicate()


def test_a_commit_wakes_the_thread_and_the_wal_reaches_the_database_file(tmp_path):
    path = str(tmp_path / "a.db")
    conn = _writer(path)
    conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(100)])
    assert _rows_in_main_file(path, tmp_path) == 0  # still only in the WAL
    worker = sqlite_checkpoint.notify(path, interval_s=0.01, idle_s=5)
    assert _wait(lambda: worker.checkpoints >= 1)
    assert _rows_in_main_file(path, tmp_path) == 100
    conn.execute("INSERT INTO t VALUES (1)")
    assert sqlite_checkpoint.notify(path, interval_s=0.01, idle_s=5) is worker  # one thread per file
    assert _wait(lambda: _rows_in_main_file(path, tmp_path) == 101)
    conn.close()


def test_checkpoints_are_spaced_by_the_interval(tmp_path):
    path = str(tmp_path / "b.db")
    conn = _writer(path)
    worker = None
    started = time.monotonic()
    while time.monotonic() - started < 0.5:  # a commit every ~5 ms for half a second
        conn.execute("INSERT INTO t VALUES (1)")
        worker = sqlite_checkpoint.notify(path, interval_s=0.2, idle_s=5)
        time.sleep(0.005)
    assert _wait(lambda: worker.checkpoints >= 2)
    assert worker.checkpoints <= 4  # ~100 commits, at most one checkpoint per 0.2 s
    conn.close()


def test_an_idle_thread_retires_and_the_next_commit_starts_another(tmp_path):
    path = str(tmp_path / "c.db")
    conn = _writer(path)
    conn.execute("INSERT INTO t VALUES (1)")
    first = sqlite_checkpoint.notify(path, interval_s=0.01, idle_s=0.1)
    assert _wait(lambda: first.checkpoints == 1)
    assert _wait(lambda: not first._thread.is_alive())
    conn.execute("INSERT INTO t VALUES (2)")
    second = sqlite_checkpoint.notify(path, interval_s=0.01, idle_s=0.1)
    assert second is not first and _wait(lambda: second.checkpoints == 1)
    assert _rows_in_main_file(path, tmp_path) == 2
    conn.close()
