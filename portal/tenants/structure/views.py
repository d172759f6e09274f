"""Views of a structure (prescripteur desk, opérateur scanning)."""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from portal.domain import distribution, operateur_panels
from portal.domain.permissions import Permission
from portal.extensions import db
from portal.formatting import PARIS
from portal.models import Distribution
from portal.tenants.structure import bp
from portal.web.clock import today
from portal.web.gate import current_tenant, has_permission
from portal.web.render import render


@bp.route("/", permission=Permission.VIEW_TENANT)
def home():
    """The place at a glance: the actions of the member's role first, then
    the carnets in stock and this month's distributions (prescripteur) and
    scans (opérateur)."""
    structure = current_tenant()
    day = today()
    desk = scans = None
    if has_permission(Permission.HAND_OUT_PASS):
        stock = distribution.structure_stock(db.session, structure)
        month_start = dt.datetime.combine(day.replace(day=1), dt.time(), tzinfo=PARIS)
        handed, pass_count = db.session.execute(
            sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(Distribution.pass_count), 0))
            .where(Distribution.structure_id == structure.id,
                   Distribution.created_at >= month_start)).one()
        desk = {"carnets": sum(len(c) for c in stock.values()),
                "pass": sum(left for c in stock.values() for _n, left in c),
                "month_distributions": handed, "month_pass": int(pass_count)}
    if structure.is_operateur and has_permission(Permission.SCAN_PASS):
        scans = operateur_panels.structure_headline(db.session, structure, day)
    return render("tenants/structure/home.html", desk=desk, scans=scans, today=day)
