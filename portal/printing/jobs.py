"""Print jobs: carnets of a serial range rendered to PDF in the background.

The job row holds the progress, so any web worker can show it; the PDF is
written under ``PRINT_DIR``. No Flask here: the job queue (``portal.jobs``,
task ``print.carnets``) runs ``run_print_job`` in a worker; ``reap_stale``
finds jobs whose worker died.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.domain import keys, serials
from portal.domain.errors import InvalidInput
from portal.models import Carnet, Pass, PrintJob, PrintJobStatus, Programme, Tenant, utcnow
from portal.printing.carnets import PrintableCarnet, PrintablePass, render_carnets_pdf

log = logging.getLogger(__name__)
MAX_CARNETS_PER_JOB = 20_000


def job_path(directory: Path, job_id: int) -> Path:
    return Path(directory) / f"carnets-{job_id}.pdf"


def create_job(session: Session, programme: Programme, first: int, last: int, *,
               issuer: Tenant, user_id: int | None, commune_name: str = "") -> PrintJob:
    if first < 1 or last < first:
        raise InvalidInput("Plage de carnets invalide : le premier numéro doit être inférieur "
                           "ou égal au dernier.", field="first_carnet")
    if last - first + 1 > MAX_CARNETS_PER_JOB:
        raise InvalidInput(f"{MAX_CARNETS_PER_JOB} carnets au plus par impression.",
                           field="last_carnet")
    existing = session.execute(sa.select(sa.func.count()).select_from(Carnet).where(
        Carnet.programme_id == programme.id, Carnet.number.between(first, last))).scalar()
    if existing != last - first + 1:
        raise InvalidInput("Cette plage contient des carnets qui n'ont pas été émis.",
                           field="last_carnet")
    job = PrintJob(issuer_id=issuer.id, programme_id=programme.id, first_carnet=first,
                   last_carnet=last, total=existing, created_by_id=user_id,
                   commune_name=commune_name[:200])
    session.add(job)
    session.flush()
    return job


def printable_carnets(session: Session, programme: Programme, first: int, last: int,
                      base_url: str, commune_name: str = "", chunk: int = 200):
    """Yield ``PrintableCarnet`` in number order, reading the pass by chunks."""
    ring = keys.pass_ring()
    commanditaire = programme.commanditaire.name
    for start in range(first, last + 1, chunk):
        end = min(last, start + chunk - 1)
        rows = session.execute(
            sa.select(Carnet.number, Pass.serial, Pass.key_id)
            .join(Pass, Pass.carnet_id == Carnet.id)
            .where(Carnet.programme_id == programme.id, Carnet.number.between(start, end))
            .order_by(Carnet.number, Pass.index_in_carnet)).all()
        current = None
        for number, serial, kid in rows:
            # The label is the carnet's number; the voucher prints « Carnet <label> ».
            if current is None or current.carnet_label != f"n° {number:07d}":
                if current is not None:
                    yield current
                current = PrintableCarnet(
                    carnet_label=f"n° {number:07d}", programme_name=programme.name,
                    commanditaire=commanditaire, face_value_cents=programme.face_value_cents,
                    valid_until=programme.valid_until, commune_name=commune_name, passes=[])
            parsed = serials.parse_serial(serial)
            current.passes.append(PrintablePass(
                serial=serial,
                verification_code=serials.display_verification_code(
                    serials.verification_code(ring, kid, parsed)),
                qr_payload=serials.qr_payload(base_url, ring, kid, parsed)))
        if current is not None:
            yield current


# A job « en cours » whose heartbeat is older than this lost its worker (killed, host lost).
STALE_SECONDS = 90
# Attempts before a job whose worker died is reported failed instead of run again.
MAX_ATTEMPTS = 3
INTERRUPTED = ("L'impression a été interrompue : le processus qui la traitait s'est arrêté "
               "({attempts} tentative(s)). Relancez l'impression.")


def run_print_job(session: Session, job_id: int, base_url: str, directory: Path, *,
                  stale_seconds: int = STALE_SECONDS) -> None:
    """Render the job's PDF, committing progress (and a heartbeat) as it goes.

    Idempotent: a job already finished is left alone; a job run again after
    its worker died renders from scratch; a job another worker is running
    (fresh heartbeat) is left to it. The PDF is written to a temporary file
    renamed at the end, so a half-written PDF is never served."""
    now = utcnow()
    stale = now - dt.timedelta(seconds=stale_seconds)
    claimed = session.execute(
        sa.update(PrintJob).where(PrintJob.id == job_id, sa.or_(
            PrintJob.status == PrintJobStatus.EN_ATTENTE,
            sa.and_(PrintJob.status == PrintJobStatus.EN_COURS,
                    sa.or_(PrintJob.heartbeat_at.is_(None), PrintJob.heartbeat_at < stale))))
        .values(status=PrintJobStatus.EN_COURS, heartbeat_at=now, done=0,
                attempts=PrintJob.attempts + 1)
        .execution_options(synchronize_session=False)).rowcount
    session.commit()
    if not claimed:
        log.info("print job %s finished or running elsewhere: nothing to do", job_id)
        return
    job = session.get(PrintJob, job_id)
    session.refresh(job)
    Path(directory).mkdir(parents=True, exist_ok=True)
    target = job_path(directory, job_id)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
    last_commit = [dt.datetime.now()]

    def progress(done: int, total: int) -> None:
        now = dt.datetime.now()
        if done == total or (now - last_commit[0]).total_seconds() > 0.5:
            session.execute(sa.update(PrintJob).where(PrintJob.id == job_id).values(
                done=done, heartbeat_at=utcnow()))
            session.commit()
            last_commit[0] = now

    try:
        programme = session.get(Programme, job.programme_id)
        with partial.open("wb") as out:
            render_carnets_pdf(
                printable_carnets(session, programme, job.first_carnet, job.last_carnet,
                                  base_url, job.commune_name),
                out, progress=progress, total=job.total)
        os.replace(partial, target)      # atomic: the PDF is whole or absent
        session.execute(sa.update(PrintJob).where(PrintJob.id == job_id).values(
            status=PrintJobStatus.TERMINE, done=job.total, finished_at=utcnow(),
            heartbeat_at=utcnow(), error=""))
        session.commit()
    except Exception as error:  # the job row must say it failed, whatever happened
        log.exception("print job %s failed", job_id)
        session.rollback()
        partial.unlink(missing_ok=True)
        session.execute(sa.update(PrintJob).where(PrintJob.id == job_id).values(
            status=PrintJobStatus.ECHEC, error=f"Échec de l'impression ({type(error).__name__}).",
            finished_at=utcnow()))
        session.commit()


def reap_stale(session: Session, *, stale_seconds: int = STALE_SECONDS,
               max_attempts: int = MAX_ATTEMPTS, job_id: int | None = None,
               requeue=None, now: dt.datetime | None = None, model: type = PrintJob,
               message: str = INTERRUPTED) -> int:
    """Find jobs « en cours » whose worker stopped sending heartbeats: run
    them again (``requeue(job_id)``) while attempts remain, otherwise mark
    them failed with a French message. Never leaves a job « en cours »
    forever. Returns the number of jobs handled. ``model``: ``PrintJob``, or
    any job row with the same columns (``ExportJob``, with ``message``)."""
    limit = (now or utcnow()) - dt.timedelta(seconds=stale_seconds)
    query = sa.select(model).where(
        model.status == PrintJobStatus.EN_COURS,
        sa.or_(model.heartbeat_at.is_(None), model.heartbeat_at < limit))
    if job_id is not None:
        query = query.where(model.id == job_id)
    # An export job's UNIQUE « active » key is released when it fails.
    released = {"active_key": None} if hasattr(model, "active_key") else {}
    handled = 0
    for job in session.execute(query).scalars().all():
        retry = requeue is not None and job.attempts < max_attempts
        values = ({"status": PrintJobStatus.EN_ATTENTE, "heartbeat_at": utcnow()} if retry else
                  {"status": PrintJobStatus.ECHEC, "finished_at": utcnow(),
                   "error": message.format(attempts=job.attempts), **released})
        # Conditional: a worker that comes back to life (or another reaper) wins the race.
        won = session.execute(
            sa.update(model).where(model.id == job.id,
                                   model.status == PrintJobStatus.EN_COURS,
                                   model.heartbeat_at == job.heartbeat_at
                                   if job.heartbeat_at is not None
                                   else model.heartbeat_at.is_(None))
            .values(**values).execution_options(synchronize_session=False)).rowcount
        session.commit()
        if won:
            handled += 1
            log.warning("%s %s lost its worker: %s", model.__tablename__, job.id,
                        "run again" if retry else "reported failed")
            if retry:
                requeue(job.id)
    return handled
