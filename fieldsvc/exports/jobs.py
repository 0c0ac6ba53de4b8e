"""Background exports: queue a job, run it, show its progress, hand over its file, forget old ones.

No Flask: the caller passes the instance folder and the settings. A job records its requester's
role and county; the rows are read under an ``Actor`` rebuilt from that record (the scope at the
time of asking), and ``may_download`` lets only the requester or an account that may see that
county's records fetch the file (``access.may_see_record``). Progress is committed every chunk
so a page polling the job sees it move; a failure is recorded on the job, never raised into a
request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from .. import access
from ..auth.principal import Actor
from ..dbtypes import utcnow
from ..errors import not_found
from ..extensions import db
from . import services, writers
from .models import ExportJob

PROGRESS_EVERY = 5000  # rows between committed progress updates
FOLDER = "export-jobs"


def folder(instance_path: str) -> Path:
    path = Path(instance_path) / FOLDER
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def queue(resource: str, fmt: str, args: dict[str, Any], lang: str, actor: Actor, total: int) -> ExportJob:
    """A job for this export, queued under the requester's scope (the caller commits)."""
    services.check_filters(resource, args)
    job = ExportJob(resource=resource, fmt=fmt, lang=lang, filters=dict(args), user_id=actor.user_id,
                    requester=actor.username, role=actor.role, county_code=actor.county_code, state="queued",
                    rows_total=total, rows_done=0)
    db.session.add(job)
    db.session.flush()
    return job


def requester(job: ExportJob) -> Actor:
    """The account as it was when it asked (its role and county bound the rows)."""
    return Actor(user_id=job.user_id, username=job.requester, role=job.role, county_code=job.county_code)


def may_download(job: ExportJob, actor: Actor) -> bool:
    return job.user_id == actor.user_id or access.may_see_record(actor, job.county_code)


def get_job(job_id: int, actor: Actor) -> ExportJob:
    """The job, or 404 when it is not this account's to see (another county's: it does not exist)."""
    job = db.session.get(ExportJob, job_id)
    if job is None or not may_download(job, actor):
        raise not_found("export job", job_id)
    return job


def recent_jobs(actor: Actor, limit: int = 20) -> list[ExportJob]:
    return list(db.session.scalars(select(ExportJob).where(ExportJob.user_id == actor.user_id)
                                   .order_by(ExportJob.id.desc()).limit(limit)))


def _counted(rows: Iterable[Any], job: ExportJob) -> Iterator[Any]:
    n = 0
    for n, row in enumerate(rows, start=1):
        if n % PROGRESS_EVERY == 0:
            job.rows_done = n
            db.session.commit()
        yield row
    job.rows_done = n


def run(job_id: int, instance_path: str) -> ExportJob | None:
    """Write one queued job's file (claimed by moving it from ``queued`` to ``running``)."""
    claimed = db.session.execute(
        ExportJob.__table__.update().where(ExportJob.id == job_id, ExportJob.state == "queued")
        .values(state="running", started_at=utcnow()))
    db.session.commit()
    if claimed.rowcount != 1:
        return None
    job = db.session.get(ExportJob, job_id)
    assert job is not None
    path = folder(instance_path) / f"job-{job.id}.{job.fmt}"
    try:
        rows = _counted(services.rows(job.resource, dict(job.filters), requester(job)), job)
        columns = services.columns_for(job.resource)  # as the API's export (samples: custom questions too)
        tmp = str(folder(instance_path))
        if job.fmt == "xlsx":
            writers.write_xlsx(str(path), job.resource, rows, job.lang, tmpdir=tmp, columns=columns)
        elif job.fmt == "gpkg":
            path.unlink(missing_ok=True)
            writers.write_gpkg(str(path), job.resource, rows, columns)
        else:
            chunks = (writers.csv_chunks(job.resource, rows, job.lang, columns) if job.fmt == "csv"
                      else writers.geojson_chunks(job.resource, rows, columns))
            with open(path, "wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
        job.state, job.path, job.size_bytes = "done", str(path), path.stat().st_size
    except Exception as error:  # recorded on the job: the page says it failed
        db.session.rollback()
        job = db.session.get(ExportJob, job_id)
        assert job is not None
        path.unlink(missing_ok=True)
        job.state, job.error = "failed", f"{type(error).__name__}: {error}"[:500]
    job.finished_at = utcnow()
    db.session.commit()
    return job


def run_pending(instance_path: str, keep_s: int) -> int:
    """Run every queued job, oldest first, after deleting expired files; returns how many ran."""
    purge(keep_s)
    ran = 0
    while True:
        job_id = db.session.scalar(select(ExportJob.id).where(ExportJob.state == "queued")
                                   .order_by(ExportJob.id).limit(1))
        if job_id is None:
            return ran
        if run(job_id, instance_path) is not None:
            ran += 1


def purge(keep_s: int) -> int:
    """Delete the files of jobs finished longer ago than ``keep_s`` (the job row stays, as ``expired``)."""
    cutoff = utcnow() - timedelta(seconds=keep_s)
    old = list(db.session.scalars(select(ExportJob).where(ExportJob.state == "done",
                                                          ExportJob.finished_at < cutoff)))
    for job in old:
        if job.path:
            Path(job.path).unlink(missing_ok=True)
        job.state, job.path = "expired", None
    db.session.commit()
    return len(old)


def start_thread(job_id: int, work: Callable[[], None]) -> threading.Thread:
    """Run ``work`` (the caller's app-context wrapper around ``run``) in a daemon thread."""
    thread = threading.Thread(target=work, name=f"export-job-{job_id}", daemon=True)
    thread.start()
    return thread


__all__ = ["folder", "get_job", "may_download", "purge", "queue", "recent_jobs", "run", "run_pending",
           "start_thread"]
