"""Export jobs in the pages (issue 16), shared by the #APTIC and Métropole
faces: « Exporter » enqueues the job and opens its page, which shows the
progress (htmx polling, like a print job) and then the download link."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from flask import abort, current_app, flash, send_file, url_for

from portal.extensions import db
from portal.jobs import enqueue, exports
from portal.models import ExportJob, PrintJobStatus, Programme, utcnow
from portal.web.actor import current_actor
from portal.web.errors import error_response
from portal.web.gate import current_tenant
from portal.web.render import redirect_to, render
from portal.web.scoping import get_or_404


def ttl() -> dt.timedelta:
    return dt.timedelta(hours=current_app.config["EXPORT_TTL_HOURS"])


def start_programme_export(programme: Programme, fmt: str):
    """POST « Exporter »: the job for this export (the running one if the
    same export is already being prepared), then its page."""
    job, new = exports.request_programme_export(
        db.session, programme, fmt, tenant=current_tenant(), user_id=current_actor().user_id)
    if new:
        enqueue("export.run", job.id)
    else:
        flash("Cet export est déjà en préparation : voici son avancement.", "info")
    return redirect_to(url_for(".export_job", job_id=job.id))


def _requeue(job_id: int) -> None:
    enqueue("export.run", job_id)


def job_page(job_id: int, back_url: Callable[[ExportJob], str]):
    job = get_or_404(ExportJob, job_id)
    if job.status is PrintJobStatus.EN_COURS and exports.reap_stale(
            db.session, stale_seconds=current_app.config["JOB_STALE_SECONDS"], job_id=job.id,
            requeue=_requeue):
        db.session.refresh(job)     # its worker died: queued again, or failed (French message)
    return render("tenants/export_job.html", partial="tenants/_export_progress.html", job=job,
                  back_url=back_url(job), expired=job.expired(utcnow()),
                  finished=job.status in (PrintJobStatus.TERMINE, PrintJobStatus.ECHEC))


def job_file(job_id: int):
    job = get_or_404(ExportJob, job_id)
    path = exports.file_path(current_app.config["EXPORT_DIR"], job)
    if job.status is not PrintJobStatus.TERMINE:
        abort(404)
    if job.expired(utcnow()):
        return error_response(410, "Ce fichier d'export a expiré : relancez l'export depuis la "
                                   "page du programme.")
    if not path.exists():
        abort(404)
    return send_file(path, mimetype=exports.MIMETYPES[job.fmt], as_attachment=True,
                     download_name=job.filename, max_age=0)
