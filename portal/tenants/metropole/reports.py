"""Métropole: monthly reports (art. 9), retours d'expérience and follow-up meetings."""
from __future__ import annotations

import sqlalchemy as sa
from flask import flash, request, url_for

from portal.domain import followup, reports
from portal.domain.permissions import Permission
from portal.extensions import db
from portal.models import Convention, MonthlyReport, Programme, Tenant
from portal.reporting import generate_and_notify
from portal.tenants.metropole import bp
from portal.web import forms
from portal.web.actor import current_actor
from portal.web.clock import today
from portal.web.downloads import CSV, PDF, attachment
from portal.web.render import redirect_to, render
from portal.web.scoping import get_or_404


@bp.route("/rapports/<int:programme_id>", permission=Permission.VIEW_TENANT)
def reports_page(programme_id: int):
    programme = get_or_404(Programme, programme_id)
    return render("tenants/dashboards/reports.html", programme=programme,
                  reports=reports.reports_of(db.session, programme),
                  default_month=reports.previous_month(today()), can_generate=True,
                  report_endpoint=".report")


@bp.route("/rapports/<int:programme_id>/generer", methods=["POST"],
          permission=Permission.GENERATE_REPORTS)
def generate_report(programme_id: int):
    programme = get_or_404(Programme, programme_id)
    month = forms.text("month", "Mois", max_length=7)
    reports.parse_month(month)
    report, created = generate_and_notify(programme, month, actor=current_actor(),
                                          regenerate=forms.boolean("regenerate"))
    flash(f"Rapport de {month} : version {report.version} "
          + ("enregistrée, référents avertis." if created else "déjà enregistrée (inchangée)."),
          "success")
    return redirect_to(url_for(".report", report_id=report.id))


@bp.route("/rapport/<int:report_id>", permission=Permission.VIEW_TENANT)
def report(report_id: int):
    found = get_or_404(MonthlyReport, report_id)
    return render("tenants/dashboards/report.html", report=found,
                  lines=reports.visible_lines(found.content, None), ratio=reports.ratio,
                  figures=reports.FIGURES, download_endpoint=".report_download")


@bp.route("/rapport/<int:report_id>.<any(csv, pdf):fmt>", permission=Permission.VIEW_TENANT)
def report_download(report_id: int, fmt: str):
    found = get_or_404(MonthlyReport, report_id)
    name = f"rapport-{found.content['prefix']}-{found.month}-v{found.version}.{fmt}"
    if fmt == "csv":
        return attachment(reports.to_csv(found), name, CSV)
    return attachment(reports.to_pdf(found), name, PDF)


@bp.route("/suivi/<int:programme_id>", permission=Permission.VIEW_TENANT)
def experience_reports(programme_id: int):
    programme = get_or_404(Programme, programme_id)
    names = dict(db.session.execute(sa.select(Tenant.id, Tenant.name).join(
        Convention, Convention.commune_id == Tenant.id).where(
        Convention.programme_id == programme.id)).all())
    return render("tenants/metropole/followup.html", programme=programme,
                  experiences=followup.experiences_of(db.session, programme),
                  headings=followup.HEADINGS, meetings=followup.meetings_of(db.session, programme),
                  names=names, today=today())


@bp.route("/suivi/<int:programme_id>/reunions", methods=["POST"],
          permission=Permission.MANAGE_CONVENTIONS)
def record_meeting(programme_id: int):
    programme = get_or_404(Programme, programme_id)
    try:
        attendees = [int(v) for v in request.form.getlist("attendees")]
    except ValueError:
        attendees = [-1]
    followup.record_meeting(db.session, programme, held_on=forms.date("held_on", "Date"),
                            topic=forms.text("topic", "Objet", max_length=300),
                            attendee_ids=attendees)
    db.session.commit()
    flash("Réunion de suivi enregistrée.", "success")
    return redirect_to(url_for(".experience_reports", programme_id=programme.id))
