"""Views of the #APTIC tenant: issuance (orders, activation, printing) and the ledger."""
from __future__ import annotations

import sqlalchemy as sa
from flask import abort, current_app, flash, send_file, url_for

from portal.domain import commanditaires, issuance, ledger, references
from portal.domain.permissions import Permission
from portal.extensions import db
from portal.formatting import format_count
from portal.jobs import enqueue
from portal.models import LedgerEntry, PassOrder, PrintJob, PrintJobStatus, Programme
from portal.printing import jobs
from portal.tenants.common import todo_items
from portal.tenants.mandataire import bp
from portal.web import export_jobs, forms
from portal.web.actor import current_actor
from portal.web.clock import today
from portal.web.gate import current_tenant
from portal.web.render import redirect_to, render
from portal.web.scoping import get_or_404


@bp.route("/", permission=Permission.VIEW_TENANT)
def home():
    return render("tenants/mandataire/home.html", todo=todo_items())


@bp.route("/emission", permission=Permission.VIEW_TENANT)
def issuance_page():
    programmes = issuance.programmes_of(db.session, current_tenant())
    rows = [(p, issuance.programme_figures(db.session, p), issuance.orders_of(db.session, p))
            for p in programmes]
    print_jobs = db.session.execute(
        sa.select(PrintJob).where(PrintJob.tenant_clause(current_tenant()))
        .order_by(PrintJob.id.desc()).limit(20)).scalars().all()
    return render("tenants/mandataire/issuance.html", rows=rows, print_jobs=print_jobs)


def _order_reference(order: PassOrder) -> str:
    return references.order(order, references.order_ranks(db.session, order.programme_id))


@bp.route("/emission/commandes", methods=["POST"], permission=Permission.ISSUE_PASS)
def create_order():
    programme = get_or_404(Programme, forms.integer("programme_id", "Programme", minimum=1))
    count = forms.integer("carnet_count", "Nombre de carnets", minimum=1, maximum=100_000)
    commanditaires.ensure_running(programme, today(), "nouvelle commande")
    order = issuance.order_carnets(db.session, programme, count, actor=current_actor())
    db.session.commit()
    flash(f"{_order_reference(order)} enregistrée : {format_count(count)} carnets émis. "
          "Ils seront activés "
          "lorsque le commanditaire aura enregistré son numéro de mandat.", "success")
    return redirect_to(url_for(".issuance_page"))


@bp.route("/emission/commandes/<int:order_id>/activer", methods=["POST"],
          permission=Permission.ISSUE_PASS)
def activate_order(order_id: int):
    order = get_or_404(PassOrder, order_id)
    count = issuance.activate_order(db.session, order, actor=current_actor())
    db.session.commit()
    flash(f"{_order_reference(order)} activée : {format_count(count)} pass entrent dans le stock du "
          "commanditaire.", "success")
    return redirect_to(url_for(".issuance_page"))


@bp.route("/impressions", methods=["POST"], permission=Permission.ISSUE_PASS)
def create_print_job():
    programme = get_or_404(Programme, forms.integer("programme_id", "Programme", minimum=1))
    first = forms.integer("first_carnet", "Premier carnet", minimum=1)
    last = forms.integer("last_carnet", "Dernier carnet", minimum=1)
    job = jobs.create_job(db.session, programme, first, last, issuer=current_tenant(),
                          user_id=current_actor().user_id,
                          commune_name=forms.text("commune_name", "Commune", required=False))
    db.session.commit()
    enqueue("print.carnets", job.id)
    return redirect_to(url_for(".print_job", job_id=job.id))


@bp.route("/impressions/<int:job_id>", permission=Permission.VIEW_TENANT)
def print_job(job_id: int):
    job = get_or_404(PrintJob, job_id)
    if job.status is PrintJobStatus.EN_COURS and jobs.reap_stale(
            db.session, stale_seconds=current_app.config["JOB_STALE_SECONDS"], job_id=job.id,
            requeue=lambda jid: enqueue("print.carnets", jid)):
        db.session.refresh(job)     # its worker died: queued again, or failed (French message)
    return render("tenants/mandataire/print_job.html",
                  partial="tenants/mandataire/_print_progress.html", job=job,
                  finished=job.status in (PrintJobStatus.TERMINE, PrintJobStatus.ECHEC))


@bp.route("/impressions/<int:job_id>/carnets.pdf", permission=Permission.VIEW_TENANT)
def print_job_pdf(job_id: int):
    job = get_or_404(PrintJob, job_id)
    path = jobs.job_path(current_app.config["PRINT_DIR"], job.id)
    if job.status is not PrintJobStatus.TERMINE or not path.exists():
        abort(404)
    return send_file(path, mimetype="application/pdf", as_attachment=True,
                     download_name=f"carnets-{job.programme.prefix}-{job.first_carnet}-"
                                   f"{job.last_carnet}.pdf")


@bp.route("/programmes/<int:programme_id>/export.<any(csv, json):fmt>", methods=["POST"],
          permission=Permission.VIEW_TENANT)
def programme_history(programme_id: int, fmt: str):
    """« Exporter »: every pass with its history, prepared by a worker (issue 16)."""
    return export_jobs.start_programme_export(get_or_404(Programme, programme_id), fmt)


@bp.route("/exports/<int:job_id>", permission=Permission.VIEW_TENANT)
def export_job(job_id: int):
    return export_jobs.job_page(job_id, lambda job: url_for(".issuance_page"))


@bp.route("/exports/<int:job_id>/fichier", permission=Permission.VIEW_TENANT)
def export_job_file(job_id: int):
    return export_jobs.job_file(job_id)


@bp.route("/journal", permission=Permission.VIEW_TENANT)
def ledger_page():
    programmes = issuance.programmes_of(db.session, current_tenant())
    entries = db.session.execute(
        sa.select(LedgerEntry).where(LedgerEntry.programme_id.in_([p.id for p in programmes]))
        .order_by(LedgerEntry.id.desc()).limit(100)).scalars().all()
    return render("tenants/mandataire/ledger.html", programmes=programmes, entries=entries,
                  prefixes={p.id: p.prefix for p in programmes})


@bp.route("/journal/verification/<int:programme_id>", permission=Permission.VIEW_TENANT)
def ledger_verification(programme_id: int):
    programme = get_or_404(Programme, programme_id)
    report = ledger.verify(db.session, programme.id)
    return render("tenants/_ledger_report.html", partial="tenants/_ledger_report.html",
                  report=report, programme=programme)


@bp.route("/taches-planifiees", permission=Permission.VIEW_TENANT)
def schedules_page():
    """The scheduled duties: last run, outcome, next run (issue 16)."""
    from portal.jobs import duties
    return render("tenants/mandataire/schedules.html", rows=duties.overview(db.session),
                  status_labels=duties.STATUS_LABELS, show_messages=True)
