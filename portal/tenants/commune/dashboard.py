"""Commune dashboard: its pass by state, per prescripteur structure, by
target public, aggregated questionnaire; its monthly reports (its own line
and the total, art. 9); its retour d'expérience (art. 9)."""
from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, request, url_for

from portal.domain import dashboards, followup, reports
from portal.domain.permissions import Permission
from portal.extensions import db
from portal.models import Convention, MonthlyReport, Programme
from portal.tenants.commune import bp
from portal.web import charts, dashboard_tables
from portal.web.actor import current_actor
from portal.web.clock import today
from portal.web.downloads import CSV, PDF, attachment
from portal.web.gate import current_tenant
from portal.web.render import redirect_to, render
from portal.web.scoping import get_or_404
from portal.web.tables import table_response

PANELS = ("consommation", "etats", "structures", "publics", "questionnaire", "evolution")


def _programme(programme_id: int) -> Programme:
    """A programme the commune has a convention with, else 404."""
    programme = next((p for p in dashboards.programmes_of_commune(db.session, current_tenant())
                      if p.id == programme_id), None)
    if programme is None:
        abort(404)
    return programme


def _convention(programme: Programme) -> Convention:
    return db.session.execute(sa.select(Convention).where(
        Convention.programme_id == programme.id,
        Convention.commune_id == current_tenant().id)).scalar_one()


@bp.route("/tableau-de-bord", permission=Permission.VIEW_TENANT)
def dashboard_index():
    """Opens on the current programme; the others are linked from there."""
    current = dashboards.current_programme(dashboards.programmes_of_commune(db.session, current_tenant()), today())
    if current is None:
        return render("tenants/dashboards/programmes.html", programmes=[], endpoint=".dashboard")
    return redirect_to(url_for(".dashboard", programme_id=current.id))


@bp.route("/tableau-de-bord/<int:programme_id>", permission=Permission.VIEW_TENANT)
def dashboard(programme_id: int):
    programme = _programme(programme_id)
    commune = current_tenant()
    line = dashboards.commune_figures(db.session, programme, today(), [commune.id])[0]
    return render("tenants/commune/dashboard.html", programme=programme, line=line,
                  carnets=dashboards.carnets(db.session, programme, commune.id),
                  panels=PANELS, today=today(),
                  other_programmes=[p for p in dashboards.programmes_of_commune(db.session, commune)
                                    if p.id != programme.id])


@bp.route("/tableau-de-bord/<int:programme_id>/panneau/<panel>", permission=Permission.VIEW_TENANT)
def dashboard_panel(programme_id: int, panel: str):
    programme = _programme(programme_id)
    if panel not in PANELS:
        abort(404)
    table = dashboard_tables.commune_panels(db.session, programme, current_tenant(),
                                            today())[panel]()
    chart = None
    if panel == "evolution":
        chart = dashboard_tables.monthly_chart(table)
    elif panel in ("publics", "structures", "etats"):
        key = {"publics": ("public", "n"), "structures": ("name", "handed_out"),
               "etats": ("state", "n")}[panel]
        rows = list(table.rows)
        chart = charts.bar_chart(table.caption, [r[key[0]] for r in rows],
                                 [r[key[1]] for r in rows],
                                 label_header=next(c.label for c in table.columns
                                                   if c.key == key[0]))
    return render("tenants/dashboards/panel_page.html", partial="tenants/dashboards/_panel.html",
                  table=table, chart=chart, programme=programme,
                  export_endpoint=".dashboard_export",
                  export_args={"programme_id": programme.id, "panel": panel})


@bp.route("/tableau-de-bord/<int:programme_id>/<panel>.<any(csv, xlsx):fmt>",
          permission=Permission.VIEW_TENANT)
def dashboard_export(programme_id: int, panel: str, fmt: str):
    programme = _programme(programme_id)
    if panel not in PANELS:
        abort(404)
    return table_response(dashboard_tables.commune_panels(
        db.session, programme, current_tenant(), today())[panel](), fmt)


# ---------------------------------------------------------------- monthly reports (art. 9)

@bp.route("/rapports/<int:programme_id>", permission=Permission.VIEW_TENANT)
def reports_page(programme_id: int):
    programme = _programme(programme_id)
    return render("tenants/dashboards/reports.html", programme=programme,
                  reports=reports.reports_of(db.session, programme), can_generate=False,
                  default_month="", report_endpoint=".report")


@bp.route("/rapport/<int:report_id>", permission=Permission.VIEW_TENANT)
def report(report_id: int):
    found = get_or_404(MonthlyReport, report_id)
    return render("tenants/dashboards/report.html", report=found,
                  lines=reports.visible_lines(found.content, current_tenant().id),
                  ratio=reports.ratio, figures=reports.FIGURES,
                  download_endpoint=".report_download")


@bp.route("/rapport/<int:report_id>.<any(csv, pdf):fmt>", permission=Permission.VIEW_TENANT)
def report_download(report_id: int, fmt: str):
    found = get_or_404(MonthlyReport, report_id)
    commune = current_tenant()
    name = f"rapport-{commune.slug}-{found.month}-v{found.version}.{fmt}"
    if fmt == "csv":
        return attachment(reports.to_csv(found, commune.id), name, CSV)
    return attachment(reports.to_pdf(found, commune.id), name, PDF)


# ---------------------------------------------------------------- retour d'expérience (art. 9)

@bp.route("/retour-experience/<int:programme_id>", permission=Permission.VIEW_TENANT)
def experience(programme_id: int):
    programme = _programme(programme_id)
    convention = _convention(programme)
    return render("tenants/commune/experience.html", programme=programme,
                  report=followup.experience_of(db.session, convention),
                  headings=followup.HEADINGS, today=today())


@bp.route("/retour-experience/<int:programme_id>", methods=["POST"],
          permission=Permission.WRITE_EXPERIENCE)
def save_experience(programme_id: int):
    programme = _programme(programme_id)
    submit = request.form.get("action") == "transmettre"
    followup.save_experience(db.session, _convention(programme),
                             {key: request.form.get(key, "") for key, _ in followup.HEADINGS},
                             submit=submit, actor=current_actor())
    db.session.commit()
    flash("Retour d'expérience transmis à la Métropole." if submit else "Brouillon enregistré.",
          "success")
    return redirect_to(url_for(".experience", programme_id=programme.id))
