"""Habilitations of the commune's agents, and requests to #APTIC."""
from __future__ import annotations

import sqlalchemy as sa
from flask import flash, url_for

from portal.domain import mandate as mandates
from portal.domain.errors import InvalidInput
from portal.domain.permissions import Permission, Role
from portal.extensions import db
from portal.models import Habilitation, HabilitationRequest, Membership, Tenant, User
from portal.tenants.commune import bp
from portal.web import forms
from portal.web.actor import current_actor
from portal.web.clock import today
from portal.web.gate import current_tenant
from portal.web.render import redirect_to, render


def _agents(commune: Tenant) -> list[tuple[User, Tenant]]:
    rows = db.session.execute(
        sa.select(User, Tenant).join(Membership, Membership.user_id == User.id)
        .join(Tenant, Tenant.id == Membership.tenant_id)
        .where(Tenant.parent_id == commune.id, Membership.role == Role.PRESCRIPTEUR_AGENT)
        .order_by(Tenant.name, User.full_name)).all()
    return [(u, s) for u, s in rows]


@bp.route("/habilitations", permission=Permission.FOLLOW_CONVENTION)
def habilitations():
    commune = current_tenant()
    rows = db.session.execute(sa.select(Habilitation).where(
        Habilitation.tenant_clause(commune)).order_by(Habilitation.id.desc())).scalars().all()
    requests = db.session.execute(sa.select(HabilitationRequest).where(
        HabilitationRequest.tenant_clause(commune))
        .order_by(HabilitationRequest.id.desc())).scalars().all()
    return render("tenants/commune/habilitations.html", habilitations=rows, requests=requests,
                  agents=_agents(commune), today=today(), problem=mandates.habilitation_problem)


@bp.route("/habilitations/demandes", methods=["POST"], permission=Permission.REQUEST_HABILITATION)
def request_habilitation():
    commune = current_tenant()
    value = forms.text("agent", "Agent", max_length=40)
    choice = next(((u, s) for u, s in _agents(commune) if value == f"{u.id}:{s.id}"), None)
    if choice is None:
        raise InvalidInput("Choisissez un agent prescripteur d'une structure de la commune.",
                           field="agent")
    mandates.request_habilitation(db.session, commune, user=choice[0], structure=choice[1],
                                  starts_on=forms.date("starts_on", "Début"),
                                  ends_on=forms.date("ends_on", "Fin"), actor=current_actor())
    db.session.commit()
    flash("Demande d'habilitation transmise à #APTIC.", "success")
    return redirect_to(url_for(".habilitations"))
