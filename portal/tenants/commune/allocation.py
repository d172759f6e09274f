"""Commune views of the convention: checklist, référent, amorçage request,
receptions and répartition among prescripteur structures (art. 3–8)."""
from __future__ import annotations

import sqlalchemy as sa
from flask import flash, url_for

from portal import notifications
from portal.domain import allocation
from portal.domain.errors import InvalidInput
from portal.domain.permissions import Permission, TenantKind
from portal.extensions import db
from portal.models import Convention, Tenant, Tranche
from portal.tenants.commune import bp
from portal.tenants.common import set_referent_from_form
from portal.web import forms
from portal.web.actor import current_actor
from portal.web.clock import today
from portal.web.gate import current_tenant
from portal.web.render import redirect_to, render
from portal.web.scoping import get_or_404


@bp.route("/conventions", permission=Permission.FOLLOW_CONVENTION)
def conventions():
    rows = db.session.execute(sa.select(Convention).where(
        Convention.tenant_clause(current_tenant())).order_by(Convention.id)).scalars().all()
    return render("tenants/commune/conventions.html", conventions=rows)


@bp.route("/conventions/<int:convention_id>", permission=Permission.FOLLOW_CONVENTION)
def convention(convention_id: int):
    found = get_or_404(Convention, convention_id)
    programme = found.programme
    tranches = db.session.execute(sa.select(Tranche).where(
        Tranche.convention_id == found.id).order_by(Tranche.id)).scalars().all()
    figures = allocation.consumption(db.session, programme).get(
        found.commune_id, allocation.Consumption(0, 0))
    return render("tenants/commune/convention.html", convention=found, tranches=tranches,
                  conditions=allocation.amorcage_conditions(db.session, found),
                  amorcage_refusal=allocation.amorcage_refusal(db.session, found, today()),
                  progress=allocation.amorcage_progress(db.session, found),
                  steps=allocation.AMORCAGE_STEPS, figures=figures, today=today())


@bp.route("/conventions/<int:convention_id>/referent", methods=["POST"],
          permission=Permission.DESIGNATE_REFERENT)
def set_referent(convention_id: int):
    found = get_or_404(Convention, convention_id)
    event = set_referent_from_form(found)
    db.session.commit()
    notifications.referent_changed(found, event.summary)
    flash("Référent enregistré ; la Métropole en est informée.", "success")
    return redirect_to(url_for(".convention", convention_id=found.id))


@bp.route("/conventions/<int:convention_id>/amorcage", methods=["POST"],
          permission=Permission.REQUEST_TRANCHE)
def request_amorcage(convention_id: int):
    found = get_or_404(Convention, convention_id)
    allocation.request_amorcage(db.session, found, actor=current_actor(), today=today())
    db.session.commit()
    flash("Demande d'amorçage envoyée à la Métropole.", "success")
    return redirect_to(url_for(".convention", convention_id=found.id))


@bp.route("/tranches/<int:tranche_id>/reception", methods=["POST"],
          permission=Permission.CONFIRM_RECEPTION)
def confirm_reception(tranche_id: int):
    tranche = get_or_404(Tranche, tranche_id)
    allocation.confirm_reception(
        db.session, tranche,
        received_carnets=forms.integer("received_carnets", "Carnets reçus", minimum=0),
        missing_numbers=forms.number_list("missing", "Carnets manquants"),
        note=forms.text("note", "Écart constaté", required=False, max_length=800),
        actor=current_actor(), today=today())
    db.session.commit()
    flash("Réception confirmée : les pass reçus sont dans le stock de la commune.", "success")
    return redirect_to(url_for(".convention", convention_id=tranche.convention_id))


def _structures(commune: Tenant) -> list[Tenant]:
    return list(db.session.execute(sa.select(Tenant).where(
        Tenant.kind == TenantKind.STRUCTURE, Tenant.parent_id == commune.id,
        Tenant.is_prescripteur.is_(True)).order_by(Tenant.name)).scalars())


@bp.route("/conventions/<int:convention_id>/repartition", permission=Permission.FOLLOW_CONVENTION)
def repartition(convention_id: int):
    found = get_or_404(Convention, convention_id)
    commune = current_tenant()
    carnets = allocation.structure_carnets(db.session, found.programme, commune)
    return render("tenants/commune/repartition.html", convention=found,
                  structures=_structures(commune),
                  stocks=allocation.structure_stocks(db.session, found.programme, commune),
                  carnets={sid: allocation.describe_carnets(numbers)
                           for sid, numbers in carnets.items()},
                  commune_stock=allocation.commune_stock(db.session, found.programme, commune))


def _structure_from_form(commune: Tenant) -> Tenant:
    structure_id = forms.integer("structure_id", "Structure", minimum=1)
    structure = next((s for s in _structures(commune) if s.id == structure_id), None)
    if structure is None:
        raise InvalidInput("Choisissez une structure prescriptrice de la commune.",
                           field="structure_id")
    return structure


@bp.route("/conventions/<int:convention_id>/repartition", methods=["POST"],
          permission=Permission.SPLIT_CARNETS)
def split(convention_id: int):
    found = get_or_404(Convention, convention_id)
    structure = _structure_from_form(current_tenant())
    count = forms.integer("carnet_count", "Nombre de carnets", minimum=1, maximum=100_000)
    if forms.choice("direction", "Sens", ("donner", "reprendre")) == "donner":
        moved = allocation.split_carnets(db.session, found, structure, count,
                                         actor=current_actor())
        message = f"{moved.text}, confiés à {structure.name}."
    else:
        moved = allocation.take_back_carnets(db.session, found, structure, count,
                                             actor=current_actor())
        message = f"{moved.text}, repris à {structure.name}."
    db.session.commit()
    flash(message, "success")
    return redirect_to(url_for(".repartition", convention_id=found.id))
