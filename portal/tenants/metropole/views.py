"""Views of the Métropole tenant."""
from __future__ import annotations

import sqlalchemy as sa

from portal.domain.permissions import Permission, TenantKind
from portal.extensions import db
from portal.models import Tenant
from portal.tenants.metropole import bp
from portal.web.gate import current_tenant
from portal.web.render import render


@bp.route("/", permission=Permission.VIEW_TENANT)
def home():
    metropole = current_tenant()
    communes = db.session.execute(
        sa.select(Tenant).where(Tenant.kind == TenantKind.COMMUNE,
                                Tenant.parent_id == metropole.id)
        .order_by(Tenant.name)).scalars().all()
    return render("tenants/metropole/home.html", communes=communes)
