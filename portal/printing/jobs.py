"""Print jobs: carnets of a serial range rendered to PDF in the background.

The job row holds the progress, so any web worker can show it; the PDF is
written under ``instance/prints/``. No Flask here: the web layer starts
``run_print_job`` in a thread (or inline in tests).
"""
from __future__ import annotations

import datetime as dt
import logging
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


def run_print_job(session: Session, job_id: int, base_url: str, directory: Path) -> None:
    """Render the job's PDF, committing progress after each carnet batch."""
    job = session.get(PrintJob, job_id)
    job.status = PrintJobStatus.EN_COURS
    session.commit()
    Path(directory).mkdir(parents=True, exist_ok=True)
    target = job_path(directory, job_id)
    partial = target.with_suffix(".part")
    last_commit = [dt.datetime.now()]

    def progress(done: int, total: int) -> None:
        now = dt.datetime.now()
        if done == total or (now - last_commit[0]).total_seconds() > 0.5:
            session.execute(sa.update(PrintJob).where(PrintJob.id == job_id).values(done=done))
            session.commit()
            last_commit[0] = now

    try:
        programme = session.get(Programme, job.programme_id)
        with partial.open("wb") as out:
            render_carnets_pdf(
                printable_carnets(session, programme, job.first_carnet, job.last_carnet,
                                  base_url, job.commune_name),
                out, progress=progress, total=job.total)
        partial.replace(target)
        session.execute(sa.update(PrintJob).where(PrintJob.id == job_id).values(
            status=PrintJobStatus.TERMINE, done=job.total, finished_at=utcnow()))
        session.commit()
    except Exception as error:  # the job row must say it failed, whatever happened
        log.exception("print job %s failed", job_id)
        session.rollback()
        partial.unlink(missing_ok=True)
        session.execute(sa.update(PrintJob).where(PrintJob.id == job_id).values(
            status=PrintJobStatus.ECHEC, error=f"Échec de l'impression ({type(error).__name__}).",
            finished_at=utcnow()))
        session.commit()
