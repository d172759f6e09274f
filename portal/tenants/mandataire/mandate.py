"""#APTIC as mandataire: mandates, habilitations, requests, reddition des comptes."""
from __future__ import annotations

import sqlalchemy as sa
from flask import flash, url_for

from portal.domain import mandate as mandates, reddition
from portal.domain.errors import InvalidInput
from portal.formatting import format_datetime
from portal.domain.permissions import Permission, Role, TenantKind
from portal.extensions import db
from portal.models import (Habilitation, HabilitationRequest, Mandate, Membership, RequestStatus,
                           Tenant, User)
from portal.tenants.mandataire import bp
from portal.web import forms, reddition as reddition_pages
from portal.web.actor import current_actor
from portal.web.clock import today
from portal.web.gate import current_tenant, has_permission
from portal.web.render import redirect_to, render
from portal.web.scoping import get_or_404


def _metropoles() -> list[Tenant]:
    return list(db.session.execute(sa.select(Tenant).where(
        Tenant.kind == TenantKind.METROPOLE).order_by(Tenant.name)).scalars())


@bp.route("/mandats", permission=Permission.VIEW_TENANT)
def mandates_page():
    rows = mandates.mandates_of(db.session, current_tenant())
    return render("tenants/mandataire/mandates.html", mandates=rows, today=today(),
                  status_label=mandates.mandate_status_label, metropoles=_metropoles())


@bp.route("/mandats", methods=["POST"], permission=Permission.MANAGE_MANDATES)
def create_mandate():
    mandant_id = forms.integer("mandant_id", "Mandant", minimum=1)
    mandant = next((m for m in _metropoles() if m.id == mandant_id), None)
    if mandant is None:
        raise InvalidInput("Choisissez le mandant.", field="mandant_id")
    created = mandates.create_mandate(
        db.session, mandant=mandant, mandataire=current_tenant(),
        reference=forms.text("reference", "Référence du mandat", max_length=80),
        accord_cadre_reference=forms.text("accord_cadre_reference", "Accord-cadre", max_length=80),
        accord_cadre_ends_on=forms.date("accord_cadre_ends_on", "Terme de l'accord-cadre"),
        starts_on=forms.date("starts_on", "Début"), ends_on=forms.date("ends_on", "Fin"),
        advance_ceiling_cents=100 * forms.integer("advance_ceiling", "Plafond d'avance (€)",
                                                  minimum=0, maximum=100_000_000),
        fee_cents=100 * forms.integer("fee", "Rémunération (€)", minimum=0, maximum=100_000_000),
        accountant_consulted_on=forms.date("accountant_consulted_on",
                                           "Consultation du comptable public", required=False),
        scope_distribution=forms.boolean("scope_distribution"),
        scope_contre_paiement=forms.boolean("scope_contre_paiement"))
    db.session.commit()
    flash(f"Mandat {created.reference} enregistré (brouillon).", "success")
    return redirect_to(url_for(".mandate", mandate_id=created.id))


def _prescripteurs(mandate: Mandate) -> list[tuple[User, Tenant]]:
    """Prescripteur agents of the structures of the mandant's communes."""
    communes = sa.select(Tenant.id).where(Tenant.parent_id == mandate.mandant_id)
    rows = db.session.execute(
        sa.select(User, Tenant).join(Membership, Membership.user_id == User.id)
        .join(Tenant, Tenant.id == Membership.tenant_id)
        .where(Membership.role == Role.PRESCRIPTEUR_AGENT, Tenant.parent_id.in_(communes))
        .order_by(Tenant.name, User.full_name)).all()
    return [(user, structure) for user, structure in rows]


@bp.route("/mandats/<int:mandate_id>", permission=Permission.VIEW_TENANT)
def mandate(mandate_id: int):
    found = get_or_404(Mandate, mandate_id)
    habilitations = db.session.execute(sa.select(Habilitation).where(
        Habilitation.mandate_id == found.id).order_by(Habilitation.id.desc())).scalars().all()
    return render("tenants/mandataire/mandate.html", mandate=found, today=today(),
                  status=mandates.mandate_status_label(found, today()),
                  habilitations=habilitations, problem=mandates.habilitation_problem,
                  prescripteurs=_prescripteurs(found),
                  latest_end=mandates.latest_end(found.accord_cadre_ends_on))


@bp.route("/mandats/<int:mandate_id>/signer", methods=["POST"],
          permission=Permission.MANAGE_MANDATES)
def sign_mandate(mandate_id: int):
    found = get_or_404(Mandate, mandate_id)
    mandates.sign_mandate(db.session, found, forms.date("signed_on", "Date de signature"))
    db.session.commit()
    flash("Mandat signé.", "success")
    return redirect_to(url_for(".mandate", mandate_id=found.id))


@bp.route("/mandats/<int:mandate_id>/terminer", methods=["POST"],
          permission=Permission.MANAGE_MANDATES)
def terminate_mandate(mandate_id: int):
    found = get_or_404(Mandate, mandate_id)
    mandates.terminate_mandate(db.session, found, forms.date("ended_on", "Date de fin"),
                               forms.text("reason", "Motif", max_length=500))
    db.session.commit()
    flash("Fin du mandat enregistrée : ses habilitations cessent à cette date.", "success")
    return redirect_to(url_for(".mandate", mandate_id=found.id))


def _agent_choice(mandate: Mandate) -> tuple[User, Tenant]:
    value = forms.text("agent", "Agent et structure", max_length=40)
    for user, structure in _prescripteurs(mandate):
        if value == f"{user.id}:{structure.id}":
            return user, structure
    raise InvalidInput("Choisissez un agent prescripteur d'une structure du territoire.",
                       field="agent")


@bp.route("/mandats/<int:mandate_id>/habilitations", methods=["POST"],
          permission=Permission.HABILITATE_AGENTS)
def grant(mandate_id: int):
    found = get_or_404(Mandate, mandate_id)
    user, structure = _agent_choice(found)
    mandates.grant_habilitation(db.session, found, user=user, structure=structure,
                                starts_on=forms.date("starts_on", "Début"),
                                ends_on=forms.date("ends_on", "Fin"), actor=current_actor(),
                                today=today())
    db.session.commit()
    flash(f"{user.full_name} est habilité(e) pour {structure.name}.", "success")
    return redirect_to(url_for(".mandate", mandate_id=found.id))


@bp.route("/habilitations/<int:habilitation_id>/revoquer", methods=["POST"],
          permission=Permission.HABILITATE_AGENTS)
def revoke(habilitation_id: int):
    habilitation = get_or_404(Habilitation, habilitation_id)
    mandates.revoke_habilitation(db.session, habilitation, on=forms.date("revoked_on", "Date"),
                                 reason=forms.text("reason", "Motif", max_length=500),
                                 actor=current_actor())
    db.session.commit()
    flash(f"Habilitation révoquée à compter du {format_datetime(habilitation.revoked_at)}.",
          "success")
    return redirect_to(url_for(".mandate", mandate_id=habilitation.mandate_id))


@bp.route("/habilitations/demandes", permission=Permission.VIEW_TENANT)
def requests():
    rows = db.session.execute(sa.select(HabilitationRequest).where(
        HabilitationRequest.tenant_clause(current_tenant()))
        .order_by(HabilitationRequest.status, HabilitationRequest.id.desc())).scalars().all()
    in_force = [m for m in mandates.mandates_of(db.session, current_tenant())
                if mandates.mandate_in_force(m, today()) is None]
    return render("tenants/mandataire/requests.html", requests=rows, mandates=in_force,
                  pending=RequestStatus.EN_ATTENTE)


@bp.route("/habilitations/demandes/<int:request_id>", methods=["POST"],
          permission=Permission.HABILITATE_AGENTS)
def decide(request_id: int):
    found = get_or_404(HabilitationRequest, request_id)
    grant_it = forms.choice("decision", "Décision", ("accorder", "refuser")) == "accorder"
    chosen = None
    if grant_it:
        chosen = get_or_404(Mandate, forms.integer("mandate_id", "Mandat", minimum=1))
    mandates.decide_request(db.session, found, grant=grant_it, mandate=chosen,
                            reason=forms.text("reason", "Motif", required=not grant_it,
                                              max_length=500),
                            actor=current_actor(), today=today())
    db.session.commit()
    flash("Demande accordée." if grant_it else "Demande refusée.", "success")
    return redirect_to(url_for(".requests"))


@bp.route("/mandats/<int:mandate_id>/reddition", permission=Permission.VIEW_TENANT)
def reddition_page(mandate_id: int):
    return reddition_pages.page(get_or_404(Mandate, mandate_id), "mandataire",
                                has_permission(Permission.RENDER_ACCOUNTS))


@bp.route("/mandats/<int:mandate_id>/reddition.<any(csv, xlsx, pdf):fmt>",
          permission=Permission.VIEW_TENANT)
def reddition_export(mandate_id: int, fmt: str):
    return reddition_pages.export(get_or_404(Mandate, mandate_id), fmt)


@bp.route("/mandats/<int:mandate_id>/reddition/verification", permission=Permission.VIEW_TENANT)
def reddition_verification(mandate_id: int):
    """Full HMAC verification of the mandate's chains, loaded lazily (htmx)."""
    return reddition_pages.verification(get_or_404(Mandate, mandate_id))


@bp.route("/mandats/<int:mandate_id>/reddition/cloture", methods=["POST"],
          permission=Permission.RENDER_ACCOUNTS)
def close_reddition(mandate_id: int):
    found = get_or_404(Mandate, mandate_id)
    start, end = forms.date("debut", "Début"), forms.date("fin", "Fin")
    closure, created = reddition.close_period(db.session, found, start, end,
                                              actor=current_actor(), today=today())
    db.session.commit()
    flash(("Période clôturée" if created else "Période déjà clôturée") +
          f" : empreinte {closure.statement_sha256[:16]}…", "success" if created else "info")
    return redirect_to(url_for(".reddition_page", mandate_id=found.id,
                               debut=start.isoformat(), fin=end.isoformat()))
