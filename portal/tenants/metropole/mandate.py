"""The Métropole as mandant: its mandates and the reddition, read-only."""
from __future__ import annotations

from portal.domain import mandate as mandates
from portal.domain.permissions import Permission
from portal.extensions import db
from portal.models import Mandate
from portal.tenants.metropole import bp
from portal.web import reddition as reddition_pages
from portal.web.clock import today
from portal.web.gate import current_tenant
from portal.web.render import render
from portal.web.scoping import get_or_404


@bp.route("/mandats", permission=Permission.VIEW_TENANT)
def mandates_page():
    return render("tenants/metropole/mandates.html",
                  mandates=mandates.mandates_of(db.session, current_tenant()), today=today(),
                  status_label=mandates.mandate_status_label)


@bp.route("/mandats/<int:mandate_id>/reddition", permission=Permission.VIEW_TENANT)
def reddition_page(mandate_id: int):
    return reddition_pages.page(get_or_404(Mandate, mandate_id), "metropole", False)


@bp.route("/mandats/<int:mandate_id>/reddition.<any(csv, xlsx, pdf):fmt>",
          permission=Permission.VIEW_TENANT)
def reddition_export(mandate_id: int, fmt: str):
    return reddition_pages.export(get_or_404(Mandate, mandate_id), fmt)


@bp.route("/mandats/<int:mandate_id>/reddition/verification", permission=Permission.VIEW_TENANT)
def reddition_verification(mandate_id: int):
    """Full HMAC verification of the mandate's chains, loaded lazily (htmx)."""
    return reddition_pages.verification(get_or_404(Mandate, mandate_id))
