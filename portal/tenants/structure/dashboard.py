"""Opérateur dashboard (issue 7): its scans by day and by service, its
contre-paiement statements and their payment status. The panels are the
ones registered in ``portal.domain.dashboards.STRUCTURE_PANELS`` (see
``portal.domain.operateur_panels``), loaded lazily with their chart and
CSV/XLSX exports; every builder reads the current structure's rows only.

Gated with ``SCAN_PASS`` (opérateur agents and administrators): a
prescripteur agent has no business with the scans; a structure that is not
an opérateur has no such dashboard (404)."""
from __future__ import annotations

from flask import abort

from portal.domain import dashboards, operateur_panels
from portal.domain.permissions import Permission
from portal.extensions import db
from portal.tenants.structure import bp
from portal.web.clock import today
from portal.web.dashboard_tables import chart_of
from portal.web.gate import current_tenant
from portal.web.render import render
from portal.web.tables import table_response


def _operateur():
    structure = current_tenant()
    if not structure.is_operateur:
        abort(404)
    return structure


def _table(panel: str):
    structure = _operateur()
    if panel not in dashboards.STRUCTURE_PANELS:
        abort(404)
    return dashboards.STRUCTURE_PANELS[panel][1](db.session, structure, today())


@bp.route("/tableau-de-bord", permission=Permission.SCAN_PASS)
def dashboard():
    structure = _operateur()
    day = today()
    return render("tenants/structure/dashboard.html", today=day,
                  figures=operateur_panels.structure_headline(db.session, structure, day),
                  panels=list(dashboards.STRUCTURE_PANELS),
                  panel_labels={name: label for name, (label, _b)
                                in dashboards.STRUCTURE_PANELS.items()})


@bp.route("/tableau-de-bord/panneau/<panel>", permission=Permission.SCAN_PASS)
def dashboard_panel(panel: str):
    table = _table(panel)
    return render("tenants/dashboards/panel_page.html", partial="tenants/dashboards/_panel.html",
                  table=table, chart=chart_of(table), export_endpoint=".dashboard_export",
                  export_args={"panel": panel})


@bp.route("/tableau-de-bord/<panel>.<any(csv, xlsx):fmt>", permission=Permission.SCAN_PASS)
def dashboard_export(panel: str, fmt: str):
    return table_response(_table(panel), fmt)
