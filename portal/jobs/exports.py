"""Export jobs (issue 16): the programme export — every pass with its full
history, the largest file the portal writes — prepared by a worker.

The job row (``ExportJob``) is the page's source of truth, as for a print
job: the worker claims it with a conditional UPDATE, writes the file to a
hidden temporary file renamed at the end (``os.replace``: a file is served
whole or not at all), and commits its progress and a heartbeat every half
second. The export itself reads on a connection of its own, in one
transaction never committed midway (its cursors stream); on SQLite that
transaction begins DEFERRED (``database.LONG_READ``): a snapshot that does
not hold the write lock the progress commits need. A job whose heartbeat
stopped lost its worker: ``printing.jobs.reap_stale(model=ExportJob)`` runs
it again or reports it failed in French. The file is served, through the tenant gate, to the tenant
that asked for it until ``expires_at`` (``EXPORT_TTL_HOURS``); the reaper
(``jobs.reap``, every minute) deletes expired files.

No Flask here: ``portal.jobs.tasks`` (task ``export.run``) and the views
pass the configuration.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.database import LONG_READ
from portal.domain import export
from portal.domain.errors import InvalidInput
from portal.models import ExportJob, Pass, PrintJobStatus, Programme, Tenant, utcnow
from portal.printing import jobs as print_jobs

log = logging.getLogger(__name__)

KIND_PROGRAMME = "programme"
MIMETYPES = {"csv": "text/csv", "json": "application/json"}
INTERRUPTED = ("L'export a été interrompu : le processus qui le préparait s'est arrêté "
               "({attempts} tentative(s)). Relancez l'export.")
# Passes between two calls of the progress callback (each call is cheap: it
# only writes when half a second has passed).
PROGRESS_EVERY = 500


def file_path(directory: str | Path, job: ExportJob) -> Path:
    return Path(directory) / f"export-{job.id}.{job.fmt}"


def _pass_count(session: Session, programme_id: int) -> int:
    return session.execute(sa.select(sa.func.count()).select_from(Pass).where(
        Pass.programme_id == programme_id)).scalar_one()


def request_programme_export(session: Session, programme: Programme, fmt: str, *,
                             tenant: Tenant, user_id: int | None) -> tuple[ExportJob, bool]:
    """The job exporting ``programme`` as ``fmt`` for ``tenant``: the one
    already waiting or running for the same export (``False``: nothing to
    enqueue), or a new one (``True``). Commits."""
    if fmt not in MIMETYPES:
        raise InvalidInput("Format d'export inconnu : CSV ou JSON.", field="fmt")
    key = f"{tenant.id}:{KIND_PROGRAMME}:{programme.id}:{fmt}"
    running = sa.select(ExportJob).where(ExportJob.active_key == key)
    existing = session.execute(running).scalar_one_or_none()
    if existing is not None:
        return existing, False
    job = ExportJob(tenant_id=tenant.id, kind=KIND_PROGRAMME, programme_id=programme.id,
                    fmt=fmt, filename=f"pass-{programme.prefix}-historique.{fmt}",
                    active_key=key, created_by_id=user_id,
                    total=_pass_count(session, programme.id))
    session.add(job)
    try:
        session.commit()
    except sa.exc.IntegrityError:     # the same export asked at the same instant: theirs runs
        session.rollback()
        return session.execute(running).scalar_one(), False
    return job, True


def run_export_job(session: Session, job_id: int, directory: str | Path, *,
                   ttl: dt.timedelta, stale_seconds: int = print_jobs.STALE_SECONDS) -> None:
    """Write the job's file. Idempotent like a print job: a finished job is
    left alone, a job whose worker died is written again from scratch, a job
    another worker is writing (fresh heartbeat) is left to it."""
    now = utcnow()
    stale = now - dt.timedelta(seconds=stale_seconds)
    claimed = session.execute(
        sa.update(ExportJob).where(ExportJob.id == job_id, sa.or_(
            ExportJob.status == PrintJobStatus.EN_ATTENTE,
            sa.and_(ExportJob.status == PrintJobStatus.EN_COURS,
                    sa.or_(ExportJob.heartbeat_at.is_(None), ExportJob.heartbeat_at < stale))))
        .values(status=PrintJobStatus.EN_COURS, heartbeat_at=now, done=0,
                attempts=ExportJob.attempts + 1)
        .execution_options(synchronize_session=False)).rowcount
    session.commit()
    if not claimed:
        log.info("export job %s finished or running elsewhere: nothing to do", job_id)
        return
    job = session.get(ExportJob, job_id)
    assert job is not None and job.programme_id is not None
    session.refresh(job)
    total = _pass_count(session, job.programme_id)
    session.execute(sa.update(ExportJob).where(ExportJob.id == job_id).values(total=total))
    session.commit()
    Path(directory).mkdir(parents=True, exist_ok=True)
    target = file_path(directory, job)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
    last = [time.monotonic()]

    def progress(done: int) -> None:
        if time.monotonic() - last[0] < 0.5:
            return
        session.execute(sa.update(ExportJob).where(
            ExportJob.id == job_id, ExportJob.status == PrintJobStatus.EN_COURS)
            .values(done=min(done, total), heartbeat_at=utcnow()))
        session.commit()
        last[0] = time.monotonic()

    try:
        # The export reads on a connection of its own, one transaction, never
        # committed midway (streaming cursors); SQLite: a snapshot without the
        # write lock (database.LONG_READ), so the progress commits go through.
        with session.get_bind().connect() as connection:
            connection.execution_options(**{LONG_READ: True})
            with Session(bind=connection) as reader:
                programme = reader.get(Programme, job.programme_id)
                assert programme is not None
                # newline="": the lines are written as the streamed download sends them.
                with partial.open("w", encoding="utf-8", newline="") as out:
                    export.write_export(reader, programme, job.fmt, out, progress=progress,
                                        progress_every=PROGRESS_EVERY)
        os.replace(partial, target)              # atomic: the file is whole or absent
        finished = utcnow()
        session.execute(sa.update(ExportJob).where(ExportJob.id == job_id).values(
            status=PrintJobStatus.TERMINE, done=total, finished_at=finished,
            heartbeat_at=finished, expires_at=finished + ttl, error="", active_key=None))
        session.commit()
    except Exception as error:  # the job row must say it failed, whatever happened
        log.exception("export job %s failed", job_id)
        session.rollback()
        partial.unlink(missing_ok=True)
        session.execute(sa.update(ExportJob).where(ExportJob.id == job_id).values(
            status=PrintJobStatus.ECHEC, active_key=None, finished_at=utcnow(),
            error=f"Échec de l'export ({type(error).__name__}). Relancez l'export."))
        session.commit()


def reap_stale(session: Session, *, stale_seconds: int = print_jobs.STALE_SECONDS,
               job_id: int | None = None, requeue=None, now: dt.datetime | None = None) -> int:
    """Export jobs whose worker died: run again while attempts remain, else failed."""
    return print_jobs.reap_stale(session, stale_seconds=stale_seconds, job_id=job_id,
                                 requeue=requeue, now=now, model=ExportJob, message=INTERRUPTED)


def purge_files(session: Session, directory: str | Path, now: dt.datetime | None = None) -> int:
    """Delete the files of expired exports, and the temporary files of jobs
    no longer running (a worker killed mid-write). Returns the files deleted."""
    folder = Path(directory)
    if not folder.is_dir():
        return 0
    now = now or utcnow()
    rows = dict(session.execute(sa.select(ExportJob.id, ExportJob).where(
        ExportJob.status != PrintJobStatus.EN_ATTENTE)).all())
    deleted = 0
    for path in folder.iterdir():
        name = path.name.lstrip(".")
        if not name.startswith("export-"):
            continue
        try:
            job_id = int(name[len("export-"):].split(".", 1)[0])
        except ValueError:
            continue
        job = rows.get(job_id)
        if job is None:
            continue
        temporary = path.name.startswith(".")
        if (temporary and job.status is not PrintJobStatus.EN_COURS) or (
                not temporary and job.expired(now)):
            path.unlink(missing_ok=True)
            deleted += 1
    return deleted
