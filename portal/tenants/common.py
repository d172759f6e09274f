"""Views every tenant kind has (members list), registered on each blueprint."""
from __future__ import annotations

import sqlalchemy as sa

from portal.domain.permissions import Permission
from portal.extensions import db
from portal.models import Membership, Tenant, User
from portal.web.gate import TenantBlueprint, current_tenant
from portal.web.render import render


def members_of(tenant: Tenant) -> list[Membership]:
    return list(db.session.execute(
        sa.select(Membership).join(User).where(Membership.tenant_id == tenant.id)
        .options(sa.orm.contains_eager(Membership.user)).order_by(User.full_name)).scalars())


def add_common_views(bp: TenantBlueprint) -> None:
    @bp.route("/membres", permission=Permission.MANAGE_MEMBERS)
    def members():
        return render("tenants/members.html", members=members_of(current_tenant()))
