"""SQLite WAL checkpoints off the request path: a background thread per process and database file.

A checkpoint copies the pages a WAL holds back into the database file and syncs both. Run
inline (SQLite's automatic checkpoint), it lands inside whichever request's commit crosses the
threshold; in a store of a million samples that is a copy of ~10,000 pages scattered through a
1 GB file, and that request waits for it. Here a thread wakes after commits (at most every
``interval_s``) and runs a PASSIVE checkpoint, which never blocks a writer or a reader, while
the next request is still being parsed and checked: sqlite3 releases the GIL while it runs.
SQLite's own automatic checkpoint stays on as a backstop (``SQLITE_WAL_AUTOCHECKPOINT_PAGES``),
should the thread fall behind. The thread opens a connection only for a checkpoint; an idle one
ends, and the next commit starts another. No Flask import: the app calls ``notify`` when a
connection that committed returns to its engine's pool (the commit is over by then).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time

log = logging.getLogger(__name__)

_SETTLE_S = 0.02
_lock = threading.Lock()
_running: dict[tuple[int, str], Checkpointer] = {}  # (pid, database path) → its thread


class Checkpointer:
    """One thread checkpointing one database file after commits."""

    def __init__(self, path: str, interval_s: float, idle_s: float) -> None:
        self.path, self.interval_s, self.idle_s = path, interval_s, idle_s
        self.checkpoints = 0  # completed PASSIVE checkpoints (read by tests)
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sqlite-checkpoint:{os.path.basename(path)}",
                                        daemon=True)

    def _run(self) -> None:
        last = 0.0
        while self._wake.wait(self.idle_s) or not self._retire():
            self._wake.clear()
            # woken as a commit ends (the app notifies when its connection returns to the pool); never
            # run more often than interval_s
            time.sleep(max(_SETTLE_S, last + self.interval_s - time.monotonic()))
            last = time.monotonic()
            self._checkpoint()

    def _checkpoint(self) -> None:
        """One PASSIVE checkpoint on a connection of its own, closed at once: an idle thread holds
        nothing open, so when the app's last connection closes SQLite still folds the WAL into the
        file and removes it (a copied or backed-up ``.db`` is then whole)."""
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            try:
                busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            finally:
                conn.close()
        except sqlite3.Error as exc:  # e.g. another process is checkpointing: the next commit tries again
            log.debug("checkpoint of %s skipped: %s", self.path, exc)
            return
        self.checkpoints += 1
        log.debug("checkpoint of %s: %s of %s WAL frames copied (busy=%s)", self.path, copied, frames, busy)

    def _retire(self) -> bool:
        """Idle: leave the registry (so the next commit starts a new thread) unless a commit just
        woke this one; decided under the registry lock, so no wake-up is lost."""
        with _lock:
            if self._wake.is_set():
                return False
            if _running.get((os.getpid(), self.path)) is self:
                del _running[(os.getpid(), self.path)]
            return True


def notify(path: str, interval_s: float, idle_s: float = 10.0) -> Checkpointer:
    """A commit went into ``path``: wake (or start) this process's checkpoint thread for it."""
    key = (os.getpid(), path)  # a forked worker starts its own thread (threads do not survive fork)
    with _lock:
        worker = _running.get(key)
        if worker is None:
            worker = _running[key] = Checkpointer(path, interval_s, idle_s)
            worker._thread.start()
        worker._wake.set()
    return worker
