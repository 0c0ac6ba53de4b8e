"""Worker processes that read and evaluate a county run's chunks ahead of the writing process.

Used by ``runs.run_grading(..., workers=N)`` (the CLI and the benchmark) where it is safe
(SQLite in WAL mode, a run that starts its own transaction); every other run is serial and
stores the same rows. ``runs`` is imported as a module (it imports this one), so its names are
looked up when a run needs them.
"""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import traceback
from collections.abc import Callable, Iterator
from multiprocessing import forkserver
from pathlib import Path
from typing import Any

from ..extensions import db
from ..lab.models import LabResult
from . import runs
from .estimated import ChunkEstimator, CountyBasis
from .evaluation import Evaluated
from .gradepass import ChunkState, _memo_last, _read_and_evaluate
from .inputs import _Reader, _same
from .models import Grade
from .rules import RulePack, load_pack

READ_CACHE_KIB = 262_144  # a worker's SQLite page cache (it only reads; the OS caches the file too)


def path_for(workers: int, fresh: bool) -> str | None:
    """The SQLite database file worker processes may read, or None when the run must be serial.

    Workers read the last committed state in their own connections, so they must see exactly what
    this transaction sees: SQLite in WAL mode (readers are not blocked by the writer), and a
    transaction that started inside ``run_grading`` (nothing of the caller's is uncommitted; the
    connection's ``BEGIN IMMEDIATE`` holds the write lock, so no one else commits until this run
    does). PostgreSQL runs and calls inside a transaction are serial (and runs of one chunk).
    """
    if workers <= 0 or not fresh or _START not in multiprocessing.get_all_start_methods():
        return None
    connection = db.session.connection()
    if connection.dialect.name != "sqlite":
        return None
    path = connection.engine.url.database
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    if connection.dialect._json_serializer is not None:
        return None  # workers bind JSON with json.dumps, as the default SQLite dialect does
    mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
    return os.path.abspath(path) if str(mode).lower() == "wal" else None


_START = "forkserver"  # how worker processes start (see read_ahead)


def warm() -> None:
    """Start the fork server now (it imports this module once; workers fork from it).

    Python 3.11's fork server imports its preload with its own ``sys.path`` (the working
    directory first, not this process's path) and skips a module it cannot import without a
    word: a run started outside the repository then had each worker import fieldsvc, NumPy and
    SciPy itself, ~1 s a worker, one after another, before the first chunk. So the server starts
    with this package's root on its ``PYTHONPATH`` (set only while it is started)."""
    multiprocessing.get_context(_START).set_forkserver_preload([__name__])  # (imports runs too)
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, before) if p)
    try:
        forkserver.ensure_running()
    finally:
        if before is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = before


_ROOT = str(Path(__file__).resolve().parents[2])  # the directory that holds the fieldsvc package


def read_ahead(path: str, pack: RulePack, gb_pack: RulePack | None, chunks: list[list[str]],
               workers: int, basis: Callable[[], CountyBasis | None] | None = None,
               fit_first: bool = False) -> Iterator[ChunkState]:
    """``_read_and_evaluate`` of each chunk, in order, done ahead by worker processes.

    Why: about three quarters of a run's CPU time is reading rows and evaluating parcels, the rest
    writing; the writes must stay in this process (its transaction), but reading and evaluating
    chunk N+1 need not wait for chunk N to be written, and a machine has more than one core.
    Worker k takes chunks k, k+W, k+2W… and sends each result through its own pipe (a worker stays
    at most a chunk ahead: a pipe holds little), so results arrive in chunk order and the run
    writes exactly what a serial run writes (a test holds the two runs' stored rows equal).

    ``basis``: a county run's estimation (``estimated.ChunkEstimator``): a worker that meets an
    unsampled parcel asks for it through its pipe, and this process answers on another (it fits
    the models once, in its own transaction; every worker values its chunks from the same ones).
    ``fit_first``: the run knows it will be asked (a parcel without any sample), so this process
    fits it before it starts the workers, while the fork server is still importing (starting a
    worker waits for that), and hands it to each worker as it starts, instead of answering their
    first questions (the second worker's waited for the first chunk to be written).

    Workers are forked from multiprocessing's fork server, a fresh process that has imported this
    module once (so a worker starts in milliseconds): a child forked from *this* process would
    inherit its open SQLite connection and lock state, which SQLite forbids using. A worker that
    fails sends its traceback; one that dies ends the pipe; either way the run raises, and every
    worker is ended.
    """
    warm()
    given = basis() if fit_first and basis is not None else None  # sent with each worker's start
    ctx = multiprocessing.get_context(_START)
    workers = min(workers, len(chunks))
    pipes, answers, procs = [], [], []
    try:
        for k in range(workers):
            receive, send = ctx.Pipe(duplex=False)
            asked, answer = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_chunk_worker, name=f"fieldsvc-grading-{k}", daemon=True,
                               args=(send, asked if basis is not None else None, path, (pack.code, pack.version),
                                     (gb_pack.code, gb_pack.version) if gb_pack else None, chunks[k::workers],
                                     given))
            proc.start()
            send.close()
            asked.close()
            pipes.append(receive)
            answers.append(answer)
            procs.append(proc)
        for n in range(len(chunks)):
            w = n % workers
            try:
                kind, body = pipes[w].recv()
                while kind == "basis" and basis is not None:  # the worker waits for it
                    answers[w].send(basis())
                    kind, body = pipes[w].recv()
            except EOFError:
                raise RuntimeError(f"grading worker {w} ended without its result") from None
            if kind != "ok":
                raise RuntimeError(f"grading worker {w} failed:\n{body}")
            yield (*body, True)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
            proc.join()
        for pipe in (*pipes, *answers):
            pipe.close()


def _chunk_worker(send: Any, asked: Any, path: str, pack_key: tuple[str, str], gb_key: tuple[str, str] | None,
                  chunks: list[list[str]], given: CountyBasis | None = None) -> None:
    """A worker process of ``read_ahead``: its own read-only connection, one read transaction;
    ``asked``: where the run's estimation basis comes, once asked for (None: nothing to estimate),
    unless it came ``given`` with the start."""
    import gc

    gc.disable()  # short-lived process: nothing to collect
    try:
        pack = load_pack(*pack_key)
        gb_pack = load_pack(*gb_key) if gb_key else None
        dialect = _sqlite_dialect()
        proc = LabResult.__table__.c.created_at.type.dialect_impl(dialect).result_processor(dialect, None)
        raw = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        try:
            raw.execute("PRAGMA query_only = ON")
            raw.execute(f"PRAGMA cache_size = -{READ_CACHE_KIB}")
            raw.execute(f"PRAGMA mmap_size = {runs.RUN_MMAP_BYTES}")
            raw.execute("BEGIN")  # one snapshot for every chunk
            reader = _Reader(raw, True, proc or _same)
            bind = _memo_last(Grade.__table__.c.inputs.type.dialect_impl(dialect).bind_processor(dialect))
            ask = (lambda: given) if given is not None else (lambda: _ask(send, asked))
            estimator = ChunkEstimator(pack, ask) if asked is not None else None
            for chunk in chunks:
                parcels, current, members, evaluated, counts = _read_and_evaluate(reader, pack, gb_pack, chunk,
                                                                                  estimator)
                # the inputs' JSON text is made here, in the worker (estimates share one inputs dict)
                evaluated = [Evaluated(*e[:7], bind(e[7]), e[8]) for e in evaluated]
                send.send(("ok", (parcels, current, members, evaluated, counts)))
            raw.execute("COMMIT")
        finally:
            raw.close()
    except BaseException:  # noqa: BLE001  (the run raises it, with this traceback)
        send.send(("error", traceback.format_exc()))
    finally:
        send.close()


def _ask(send: Any, asked: Any) -> CountyBasis | None:
    """The run's estimation basis, from the process that runs it (``read_ahead`` answers)."""
    send.send(("basis", None))
    return asked.recv()


def _sqlite_dialect() -> Any:
    from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite

    return SQLiteDialect_pysqlite()
