"""#APTIC dashboard: reddition links of its mandates, end-of-validity
timeline of each programme, stock and shipments.

Panels registered in ``portal.domain.dashboards.MANDATAIRE_PANELS`` (name →
(label, builder(session, programme, today) -> Table)) appear here, lazily
loaded, with their chart (``Table.chart``) and CSV/XLSX exports: the
qualification pipeline, the opérateurs to examine, the statements to pay and
the anomalies (``portal.domain.operateur_panels``).
"""
from __future__ import annotations

import sqlalchemy as sa
from flask import abort

from portal.domain import dashboards, funds, issuance, mandate as mandates, network
from portal.domain.permissions import Permission
from portal.domain.tables import Column, Table
from portal.extensions import db, htmx
from portal.models import Convention, Programme, Shipment, Tenant, Tranche
from portal.tenants.mandataire import bp
from portal.web.clock import today
from portal.web.dashboard_tables import chart_of
from portal.web.gate import current_tenant
from portal.web.render import render
from portal.web.scoping import get_or_404
from portal.web.tables import table_response


def _shipments(programme: Programme) -> Table:
    rows = db.session.execute(
        sa.select(Tranche, Tenant.name, sa.func.count(Shipment.id),
                  sa.func.coalesce(sa.func.sum(Shipment.last_carnet - Shipment.first_carnet + 1), 0))
        .join(Convention, Convention.id == Tranche.convention_id)
        .join(Tenant, Tenant.id == Convention.commune_id)
        .outerjoin(Shipment, Shipment.tranche_id == Tranche.id)
        .where(Convention.programme_id == programme.id)
        .group_by(Tranche.id, Tenant.name).order_by(Tranche.id.desc())).all()
    day = today()
    return Table(f"expeditions-{programme.prefix}", "Expéditions", [
        Column("commune", "Commune"), Column("kind", "Tranche"), Column("quantity", "Pass", "int"),
        Column("status", "État"), Column("due_on", "Livraison due le", "date"),
        Column("carnets", "Carnets expédiés", "int"), Column("late", "En retard")],
        [{"commune": name, "kind": t.kind.label, "quantity": t.quantity, "status": t.status.label,
          "due_on": t.due_on, "carnets": int(carnets), "late": "oui" if t.is_late(day) else ""}
         for t, name, _n, carnets in rows], caption="Tranches et expéditions")


def _timeline(programme: Programme) -> Table:
    return Table(f"fin-de-validite-{programme.prefix}", "Fin de validité", [
        Column("label", "Étape"), Column("on", "Date", "date"),
        Column("days", "Jours restants", "int")],
        [{"label": m.label, "on": m.on, "days": m.days_left}
         for m in network.validity_timeline(programme, today())],
        caption=f"Calendrier de fin de validité — {programme.name}")


def _panels(programme: Programme) -> dict:
    panels = {"expeditions": ("Expéditions", _shipments),
              "fin-de-validite": ("Fin de validité", _timeline)}
    panels.update({name: (label, lambda p, b=builder: b(db.session, p, today()))
                   for name, (label, builder) in dashboards.MANDATAIRE_PANELS.items()})
    return panels


@bp.route("/tableau-de-bord", permission=Permission.VIEW_TENANT)
def dashboard():
    issuer = current_tenant()
    day = today()
    # Programmes still running first (most recent first), ended ones after.
    programmes = sorted(issuance.programmes_of(db.session, issuer),
                        key=lambda p: (p.tolerance_until < day, -p.id))
    return render("tenants/mandataire/dashboard.html", today=day,
                  mandates=[(m, mandates.mandate_status_label(m, day))
                            for m in mandates.mandates_of(db.session, issuer)],
                  funds_positions=funds.positions_of(db.session, issuer, day),
                  programmes=[(p, dashboards.pass_stock(db.session, p),
                               dashboards.carnets(db.session, p), _panels(p)) for p in programmes])


@bp.route("/tableau-de-bord/<int:programme_id>/panneau/<panel>", permission=Permission.VIEW_TENANT)
def dashboard_panel(programme_id: int, panel: str):
    programme = get_or_404(Programme, programme_id)
    panels = _panels(programme)
    if panel not in panels:
        abort(404)
    table = panels[panel][1](programme)
    return render("tenants/dashboards/panel_page.html", partial="tenants/dashboards/_panel.html",
                  table=table, chart=chart_of(table), programme=programme,
                  # inside the dashboard the programme is the h2: its panels are h3
                  panel_heading_level=3 if htmx else 2,
                  export_endpoint=".dashboard_export",
                  export_args={"programme_id": programme.id, "panel": panel})


@bp.route("/tableau-de-bord/<int:programme_id>/<panel>.<any(csv, xlsx):fmt>",
          permission=Permission.VIEW_TENANT)
def dashboard_export(programme_id: int, panel: str, fmt: str):
    programme = get_or_404(Programme, programme_id)
    panels = _panels(programme)
    if panel not in panels:
        abort(404)
    return table_response(panels[panel][1](programme), fmt)
