"""Métropole dashboard (convention art. 5, 6, 9): stock, communes,
projections, deadlines, carnets; lazy panels and exports of every table."""
from __future__ import annotations

from flask import abort, request, url_for

from portal.domain import dashboards, funds, issuance
from portal.domain.permissions import Permission
from portal.extensions import db
from portal.models import Programme
from portal.tenants.metropole import bp
from portal.web import dashboard_tables
from portal.web.clock import today
from portal.web.gate import current_tenant
from portal.web.render import redirect_to, render
from portal.web.scoping import get_or_404
from portal.web.tables import table_response

PANELS = ("communes", "carnets", "etats", "echeances", "evolution")


@bp.route("/tableau-de-bord", permission=Permission.VIEW_TENANT)
def dashboard_index():
    """Opens on the current programme; the others are linked from there."""
    current = dashboards.current_programme(issuance.programmes_of(db.session, current_tenant()), today())
    if current is None:
        return render("tenants/dashboards/programmes.html", programmes=[], endpoint=".dashboard")
    return redirect_to(url_for(".dashboard", programme_id=current.id))


@bp.route("/tableau-de-bord/<int:programme_id>", permission=Permission.VIEW_TENANT)
def dashboard(programme_id: int):
    programme = get_or_404(Programme, programme_id)
    day = today()
    dash = dashboards.metropole_headline(db.session, programme, day)
    others = [p for p in issuance.programmes_of(db.session, current_tenant()) if p.id != programme.id]
    return render("tenants/metropole/dashboard.html", programme=programme, dash=dash, today=day,
                  panels=PANELS, other_programmes=others,
                  funds_positions=funds.positions_of(db.session, current_tenant(), day))


@bp.route("/tableau-de-bord/<int:programme_id>/panneau/<panel>", permission=Permission.VIEW_TENANT)
def dashboard_panel(programme_id: int, panel: str):
    """A slow panel, loaded by htmx after the page (hx-trigger="load")."""
    programme = get_or_404(Programme, programme_id)
    if panel not in PANELS:
        abort(404)
    commune_filter = _filter()
    table = dashboard_tables.metropole_panels(db.session, programme, today(),
                                              commune_filter)[panel]()
    chart = None
    if panel == "evolution":
        chart = dashboard_tables.monthly_chart(table)
    elif panel == "communes":
        chart = dashboard_tables.communes_chart(table)
    return render("tenants/dashboards/panel_page.html", partial="tenants/dashboards/_panel.html",
                  table=table, chart=chart, programme=programme,
                  export_endpoint=".dashboard_export",
                  export_args={"programme_id": programme.id, "panel": panel,
                               **({"filtre": commune_filter} if commune_filter else {})},
                  filters=dashboard_tables.COMMUNE_FILTERS if panel == "communes" else None,
                  filter_url=url_for(".dashboard_panel", programme_id=programme.id, panel=panel),
                  current_filter=commune_filter)


@bp.route("/tableau-de-bord/<int:programme_id>/<panel>.<any(csv, xlsx):fmt>",
          permission=Permission.VIEW_TENANT)
def dashboard_export(programme_id: int, panel: str, fmt: str):
    programme = get_or_404(Programme, programme_id)
    if panel not in PANELS:
        abort(404)
    return table_response(
        dashboard_tables.metropole_panels(db.session, programme, today(), _filter())[panel](), fmt)


def _filter() -> str:
    value = request.args.get("filtre", "")
    return value if value in dashboard_tables.COMMUNE_FILTERS else ""
