"""#APTIC registers commanditaires, hubs and structures, and exports the qualified
places of a programme in the national schema (issue 13)."""
from __future__ import annotations

import sqlalchemy as sa
from flask import flash, request, url_for

from portal.domain import commanditaires, structures
from portal.domain.errors import InvalidInput
from portal.domain.permissions import Permission, TenantKind
from portal.extensions import db
from portal.models import COLLECTIVITE_LABELS, Programme, Tenant
from portal.tenants.mandataire import bp
from portal.web.actor import current_actor
from portal.web.formpage import (blank, client_ip, lieux_export, send_invitation,
                                 structure_form_data)
from portal.web.gate import current_tenant
from portal.web.render import redirect_to, render
from portal.web.scoping import get_or_404


def _commanditaires_page():
    rows = commanditaires.commanditaires_of(db.session, current_tenant())
    return render("onboarding/commanditaires.html", rows=rows, collectivites=COLLECTIVITE_LABELS,
                  values=blank({"collectivite": "metropole"}))


@bp.route("/commanditaires", permission=Permission.REGISTER_COMMANDITAIRES)
def commanditaires_page():
    return _commanditaires_page()


@bp.route("/commanditaires", methods=["POST"], permission=Permission.REGISTER_COMMANDITAIRES)
def register_commanditaire():
    form = request.form
    tenant, invitation, token = commanditaires.register(
        db.session, issuer=current_tenant(), name=form.get("name", ""),
        collectivite=form.get("collectivite", ""), siren=form.get("siren", ""),
        address_line=form.get("address_line", ""), postal_code=form.get("postal_code", ""),
        city=form.get("city", ""), admin_email=form.get("admin_email", ""),
        actor=current_actor(), ip=client_ip())
    db.session.commit()
    send_invitation(invitation, token)
    flash(f"{tenant.name} est enregistré ; {invitation.email} est invité(e) à l'administrer "
          "(lien valable 7 jours).", "success")
    return redirect_to(url_for(".commanditaires_page"))


def _hubs_page():
    return render("onboarding/hubs.html", rows=commanditaires.hubs(db.session), values=blank())


@bp.route("/hubs", permission=Permission.REGISTER_COMMANDITAIRES)
def hubs_page():
    return _hubs_page()


@bp.route("/hubs", methods=["POST"], permission=Permission.REGISTER_COMMANDITAIRES)
def register_hub():
    """The Hub that gives the opinions of convention art. 4, and its first agent."""
    form = request.form
    tenant, invitation, token = commanditaires.register_hub(
        db.session, issuer=current_tenant(), name=form.get("name", ""),
        address_line=form.get("address_line", ""), postal_code=form.get("postal_code", ""),
        city=form.get("city", ""), agent_email=form.get("agent_email", ""),
        actor=current_actor(), ip=client_ip())
    db.session.commit()
    send_invitation(invitation, token)
    flash(f"{tenant.name} est enregistré ; {invitation.email} est invité(e) à y donner les "
          "avis du Hub (lien valable 7 jours).", "success")
    return redirect_to(url_for(".hubs_page"))


def _communes_served():
    """Communes of the commanditaires #APTIC serves."""
    ids = [t.id for t, _p in commanditaires.commanditaires_of(db.session, current_tenant())]
    return list(db.session.execute(sa.select(Tenant).where(
        Tenant.kind == TenantKind.COMMUNE, Tenant.parent_id.in_(ids)).order_by(Tenant.name))
        .scalars())


@bp.route("/structures", permission=Permission.REGISTER_STRUCTURES)
def structures_page():
    return render("onboarding/structures.html", communes=_communes_served(), rows=None,
                  values=blank({"is_operateur": True}),
                  action=url_for(".register_structure"))


@bp.route("/structures", methods=["POST"], permission=Permission.REGISTER_STRUCTURES)
def register_structure():
    communes = _communes_served()
    raw = request.form.get("commune_id", "")
    commune = next((c for c in communes if str(c.id) == raw), None)
    if commune is None:
        raise InvalidInput("Choisissez la commune de la structure.", field="commune_id")
    structure, invitation, token = structures.register_structure(
        db.session, commune, structure_form_data(), actor=current_actor(), ip=client_ip())
    db.session.commit()
    send_invitation(invitation, token)
    flash(f"{structure.name} ({commune.name}) est enregistrée ; {invitation.email} est "
          "invité(e) à l'administrer.", "success")
    return redirect_to(url_for(".structures_page"))


@bp.route("/programmes/<int:programme_id>/lieux.<any(csv, json):fmt>",
          permission=Permission.VIEW_TENANT)
def lieux_page(programme_id: int, fmt: str):
    return lieux_export(get_or_404(Programme, programme_id), fmt)
