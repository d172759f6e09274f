"""Views of the commune tenant."""
from __future__ import annotations

import sqlalchemy as sa

from portal.domain.permissions import Permission, TenantKind
from portal.extensions import db
from portal.models import Tenant
from portal.tenants.commune import bp
from portal.web.gate import current_tenant
from portal.web.render import render


@bp.route("/", permission=Permission.VIEW_TENANT)
def home():
    commune = current_tenant()
    structures = db.session.execute(
        sa.select(Tenant).where(Tenant.kind == TenantKind.STRUCTURE,
                                Tenant.parent_id == commune.id)
        .order_by(Tenant.name)).scalars().all()
    return render("tenants/commune/home.html", structures=structures)
