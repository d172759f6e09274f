"""Views of the Métropole tenant: its communes, its programmes, its orders."""
from __future__ import annotations

import sqlalchemy as sa
from flask import flash, request, url_for

from portal.domain import calendar, issuance, references
from portal.domain.permissions import Permission, TenantKind
from portal.extensions import db
from portal.models import PassOrder, Programme, Tenant
from portal.tenants.common import todo_items
from portal.tenants.metropole import bp
from portal.web import export_jobs, forms
from portal.web.actor import current_actor
from portal.web.gate import current_tenant
from portal.web.render import redirect_to, render
from portal.web.scoping import get_or_404


@bp.route("/", permission=Permission.VIEW_TENANT)
def home():
    metropole = current_tenant()
    communes = db.session.execute(
        sa.select(Tenant).where(Tenant.kind == TenantKind.COMMUNE,
                                Tenant.parent_id == metropole.id)
        .order_by(Tenant.name)).scalars().all()
    return render("tenants/metropole/home.html", communes=communes, todo=todo_items())


@bp.route("/programmes", permission=Permission.VIEW_TENANT)
def programmes():
    rows = [(p, issuance.programme_figures(db.session, p))
            for p in issuance.programmes_of(db.session, current_tenant())]
    return render("tenants/metropole/programmes.html", rows=rows)


@bp.route("/programmes/<int:programme_id>", permission=Permission.VIEW_TENANT)
def programme(programme_id: int):
    found = get_or_404(Programme, programme_id)
    return render("tenants/metropole/programme.html", programme=found,
                  figures=issuance.programme_figures(db.session, found),
                  orders=issuance.orders_of(db.session, found),
                  target_publics=issuance.TARGET_PUBLICS, subdivisions=calendar.SUBDIVISIONS)


def _settings_from_form() -> dict:
    values = {"name": forms.text("name", "Nom du programme")}
    for name, (label, low, high) in issuance.INT_SETTINGS.items():
        values[name] = forms.integer(name, label, minimum=low, maximum=high)
    for name, label in issuance.DATE_SETTINGS.items():
        values[name] = forms.date(name, label)
    values["holiday_subdivision"] = forms.choice("holiday_subdivision", "Calendrier",
                                                 tuple(calendar.SUBDIVISIONS), required=False) or ""
    values["pentecost_worked"] = forms.boolean("pentecost_worked")
    values["partial_last_tranche"] = forms.boolean("partial_last_tranche")
    values["allow_partial_carnet"] = forms.boolean("allow_partial_carnet")
    publics = request.form.getlist("target_publics")
    values["target_publics"] = [p for p in publics if p]
    return values


@bp.route("/programmes/<int:programme_id>/modifier", methods=["POST"],
          permission=Permission.MANAGE_PROGRAMMES)
def update_programme(programme_id: int):
    found = get_or_404(Programme, programme_id)
    from portal.domain import commanditaires
    from portal.web.formpage import client_ip
    commanditaires.update_programme(db.session, found, _settings_from_form(),
                                    actor=current_actor(), ip=client_ip())
    db.session.commit()
    flash("Réglages du programme enregistrés.", "success")
    return redirect_to(url_for(".programme", programme_id=found.id))


@bp.route("/commandes/<int:order_id>/mandat", methods=["POST"],
          permission=Permission.MANAGE_PROGRAMMES)
def record_payment(order_id: int):
    order = get_or_404(PassOrder, order_id)
    issuance.record_payment_reference(
        db.session, order, forms.text("payment_reference", "Numéro de mandat", max_length=60),
        actor=current_actor())
    db.session.commit()
    reference = references.order(order, references.order_ranks(db.session, order.programme_id))
    flash(f"Numéro de mandat enregistré pour la {references.lower_first(reference)} : #APTIC peut "
          "maintenant activer ses pass.", "success")
    return redirect_to(url_for(".programme", programme_id=order.programme_id))


@bp.route("/programmes/<int:programme_id>/export.<any(csv, json):fmt>", methods=["POST"],
          permission=Permission.VIEW_TENANT)
def programme_history(programme_id: int, fmt: str):
    """« Exporter »: every pass with its history, prepared by a worker (issue 16)."""
    return export_jobs.start_programme_export(get_or_404(Programme, programme_id), fmt)


@bp.route("/exports/<int:job_id>", permission=Permission.VIEW_TENANT)
def export_job(job_id: int):
    return export_jobs.job_page(job_id, lambda job: url_for(".programme",
                                                       programme_id=job.programme_id))


@bp.route("/exports/<int:job_id>/fichier", permission=Permission.VIEW_TENANT)
def export_job_file(job_id: int):
    return export_jobs.job_file(job_id)


@bp.route("/taches-planifiees", permission=Permission.VIEW_TENANT)
def schedules_page():
    """The commanditaire's scheduled duties (monthly report, end-of-validity alerts): last run,
    outcome, next run (issue 16)."""
    from portal.jobs import duties
    return render("tenants/mandataire/schedules.html",
                  rows=duties.overview(db.session, names=duties.COMMANDITAIRE_DUTIES),
                  status_labels=duties.STATUS_LABELS, show_messages=False)
