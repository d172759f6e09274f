"""Views of the commune tenant."""
from __future__ import annotations

import io

import sqlalchemy as sa
from flask import abort, send_file

from portal.domain import commanditaires
from portal.domain.permissions import Permission, TenantKind
from portal.extensions import db
from portal.models import Programme, ProgrammePerimeter, Tenant
from portal.printing.carnets import render_explanatory_document
from portal.tenants.commune import bp
from portal.tenants.common import todo_items
from portal.web.gate import current_tenant
from portal.web.clock import today
from portal.web.render import render


def _structures(commune: Tenant) -> list[Tenant]:
    return list(db.session.execute(
        sa.select(Tenant).where(Tenant.kind == TenantKind.STRUCTURE,
                                Tenant.parent_id == commune.id)
        .order_by(Tenant.name)).scalars())


def _programmes(commune: Tenant) -> list[Programme]:
    """Programmes whose perimeter includes this commune."""
    return list(db.session.execute(
        sa.select(Programme).join(ProgrammePerimeter)
        .where(ProgrammePerimeter.tenant_id == commune.id).order_by(Programme.id)).scalars())


@bp.route("/", permission=Permission.VIEW_TENANT)
def home():
    commune = current_tenant()
    return render("tenants/commune/home.html", structures=_structures(commune),
                  programmes=_programmes(commune), todo=todo_items())


@bp.route("/programmes/<int:programme_id>/document-explicatif.pdf",
          permission=Permission.VIEW_TENANT)
def explanatory_document(programme_id: int):
    commune = current_tenant()
    programme = next((p for p in _programmes(commune) if p.id == programme_id), None)
    if programme is None:
        abort(404)
    commanditaires.ensure_running(programme, today(), "document explicatif")
    operateurs = [{"name": s.name, "address": s.full_address, "services": []}
                  for s in _structures(commune) if s.is_operateur]
    out = io.BytesIO()
    render_explanatory_document(commune.name, programme.name, programme.valid_until,
                                operateurs, out)
    out.seek(0)
    return send_file(out, mimetype="application/pdf", as_attachment=True,
                     download_name=f"pass-numerique-{commune.slug}.pdf")
