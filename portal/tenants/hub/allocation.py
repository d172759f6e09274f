"""Hub Francil'IN: the two opinions of convention art. 4, per commune."""
from __future__ import annotations

import sqlalchemy as sa
from flask import flash, url_for

from portal.domain import allocation
from portal.domain.permissions import Permission
from portal.extensions import db
from portal.models import Convention, HubOpinion, OpinionKind, Tenant
from portal.tenants.hub import bp
from portal.web import forms
from portal.web.actor import current_actor
from portal.web.clock import today
from portal.web.gate import current_tenant
from portal.web.render import redirect_to, render
from portal.web.scoping import get_or_404


@bp.route("/avis", permission=Permission.VIEW_TENANT)
def opinions():
    conventions = db.session.execute(
        sa.select(Convention).join(Tenant, Tenant.id == Convention.commune_id)
        .where(Convention.tenant_clause(current_tenant()))
        .order_by(Convention.programme_id, Tenant.name)).scalars().all()
    latest = {c.id: allocation.latest_opinions(db.session, c) for c in conventions}
    # Communes still missing an opinion first (stable sort keeps programme, name).
    kinds = list(OpinionKind)
    conventions = sorted(conventions, key=lambda c: all(latest[c.id].get(k) for k in kinds))
    history = db.session.execute(
        sa.select(HubOpinion).where(HubOpinion.hub_id == current_tenant().id)
        .order_by(HubOpinion.id.desc()).limit(50)).scalars().all()
    return render("tenants/hub/opinions.html", conventions=conventions, latest=latest,
                  history=history, kinds=kinds, today=today())


@bp.route("/avis/<int:convention_id>", methods=["POST"], permission=Permission.GIVE_HUB_OPINION)
def give_opinion(convention_id: int):
    convention = get_or_404(Convention, convention_id)
    allocation.record_opinion(
        db.session, convention, hub=current_tenant(),
        kind=forms.choice("kind", "Avis", OpinionKind),
        favourable=forms.choice("verdict", "Sens de l'avis", ("favorable", "defavorable"))
        == "favorable",
        given_on=forms.date("given_on", "Date du courriel"),
        evidence=forms.text("evidence", "Justificatif", max_length=800),
        actor=current_actor())
    db.session.commit()
    flash(f"Avis enregistré pour {convention.commune.name}.", "success")
    return redirect_to(url_for(".opinions"))
