"""Métropole views of the allocation: conventions, checklists, tranches,
monthly abondement review, shared stock, sanctions (convention art. 2–11)."""
from __future__ import annotations

import sqlalchemy as sa
from flask import flash, url_for

from portal.domain import allocation, dashboards
from portal.domain.permissions import Permission, TenantKind
from portal.extensions import db
from portal.formatting import format_count
from portal.models import (Convention, ConventionEvent, Programme, ProgrammePerimeter, Sanction,
                           SanctionKind, Tenant, Tranche)
from portal.tenants.metropole import bp
from portal.tenants.common import set_referent_from_form
from portal.web import forms
from portal.web.actor import current_actor
from portal.web.clock import today
from portal.web.gate import current_tenant
from portal.web.render import redirect_to, render
from portal.web.scoping import get_or_404


@bp.route("/allocation/<int:programme_id>", permission=Permission.VIEW_TENANT)
def allocation_page(programme_id: int):
    programme = get_or_404(Programme, programme_id)
    day = today()
    conventions = allocation.conventions_of(db.session, programme)
    candidates = {c.convention.id: c for c in
                  allocation.abondement_candidates(db.session, programme, day)}
    checklists = {c.id: allocation.amorcage_conditions(db.session, c) for c in conventions}
    tranches = db.session.execute(
        sa.select(Tranche).join(Convention).where(Convention.programme_id == programme.id)
        .order_by(Tranche.id.desc())).scalars().all()
    missing_conventions = db.session.execute(
        sa.select(sa.func.count()).select_from(Tenant)
        .join(ProgrammePerimeter, ProgrammePerimeter.tenant_id == Tenant.id)
        .where(ProgrammePerimeter.programme_id == programme.id,
               Tenant.kind == TenantKind.COMMUNE,
               Tenant.id.not_in(sa.select(Convention.commune_id).where(
                   Convention.programme_id == programme.id)))).scalar()
    return render("tenants/metropole/allocation.html", programme=programme, today=day,
                  conventions=conventions, candidates=candidates, checklists=checklists,
                  tranches=tranches, stock=allocation.stock(db.session, programme),
                  ps=dashboards.pass_stock(db.session, programme),
                  missing_conventions=missing_conventions)


@bp.route("/allocation/<int:programme_id>/conventions", methods=["POST"],
          permission=Permission.MANAGE_CONVENTIONS)
def create_conventions(programme_id: int):
    """One convention per commune of the programme's perimeter that has none."""
    programme = get_or_404(Programme, programme_id)
    communes = db.session.execute(
        sa.select(Tenant).join(ProgrammePerimeter, ProgrammePerimeter.tenant_id == Tenant.id)
        .where(ProgrammePerimeter.programme_id == programme.id, Tenant.kind == TenantKind.COMMUNE,
               Tenant.parent_id == current_tenant().id,
               Tenant.id.not_in(sa.select(Convention.commune_id).where(
                   Convention.programme_id == programme.id)))).scalars().all()
    for commune in communes:
        allocation.create_convention(db.session, programme, commune)
    db.session.commit()
    flash(f"{len(communes)} convention(s) créée(s).", "success")
    return redirect_to(url_for(".allocation_page", programme_id=programme.id))


@bp.route("/conventions/<int:convention_id>", permission=Permission.VIEW_TENANT)
def convention(convention_id: int):
    found = get_or_404(Convention, convention_id)
    events = db.session.execute(sa.select(ConventionEvent).where(
        ConventionEvent.convention_id == found.id).order_by(ConventionEvent.id.desc())
    ).scalars().all()
    sanctions = db.session.execute(sa.select(Sanction).where(
        Sanction.convention_id == found.id).order_by(Sanction.id.desc())).scalars().all()
    tranches = db.session.execute(sa.select(Tranche).where(
        Tranche.convention_id == found.id).order_by(Tranche.id)).scalars().all()
    figures = allocation.consumption(db.session, found.programme).get(
        found.commune_id, allocation.Consumption(0, 0))
    return render("tenants/metropole/convention.html", convention=found, events=events,
                  sanctions=sanctions, tranches=tranches, figures=figures, today=today(),
                  conditions=allocation.amorcage_conditions(db.session, found),
                  progress=allocation.amorcage_progress(db.session, found),
                  steps=allocation.AMORCAGE_STEPS, sanction_kinds=list(SanctionKind))


@bp.route("/conventions/<int:convention_id>/signature", methods=["POST"],
          permission=Permission.MANAGE_CONVENTIONS)
def sign_convention(convention_id: int):
    found = get_or_404(Convention, convention_id)
    allocation.record_signature(
        db.session, found, forms.choice("party", "Partie", ("commune", "metropole")),
        forms.date("signed_on", "Date de signature"),
        forms.text("signatory", "Signataire"), actor=current_actor())
    db.session.commit()
    flash("Signature enregistrée.", "success")
    return redirect_to(url_for(".convention", convention_id=found.id))


@bp.route("/conventions/<int:convention_id>/avenant", methods=["POST"],
          permission=Permission.MANAGE_CONVENTIONS)
def add_avenant(convention_id: int):
    found = get_or_404(Convention, convention_id)
    allocation.record_avenant(db.session, found, signed_on=forms.date("signed_on", "Date"),
                              summary=forms.text("summary", "Objet de l'avenant", max_length=800),
                              new_end=forms.date("new_end", "Nouvelle échéance", required=False),
                              actor=current_actor())
    db.session.commit()
    flash("Avenant enregistré.", "success")
    return redirect_to(url_for(".convention", convention_id=found.id))


@bp.route("/tranches/<int:tranche_id>/confirmer", methods=["POST"],
          permission=Permission.CONFIRM_TRANCHES)
def confirm_amorcage(tranche_id: int):
    tranche = get_or_404(Tranche, tranche_id)
    allocation.confirm_amorcage(db.session, tranche, actor=current_actor(), today=today())
    db.session.commit()
    flash(f"Amorçage confirmé pour {tranche.convention.commune.name} : livraison attendue au "
          f"plus tard le {tranche.due_on:%d/%m/%Y}.", "success")
    return redirect_to(url_for(".allocation_page", programme_id=tranche.convention.programme_id))


@bp.route("/tranches/<int:tranche_id>/refuser", methods=["POST"],
          permission=Permission.CONFIRM_TRANCHES)
def refuse_tranche(tranche_id: int):
    tranche = get_or_404(Tranche, tranche_id)
    allocation.refuse_tranche(db.session, tranche, forms.text("reason", "Motif", max_length=800),
                              actor=current_actor(), today=today())
    db.session.commit()
    flash("Demande refusée.", "info")
    return redirect_to(url_for(".allocation_page", programme_id=tranche.convention.programme_id))


@bp.route("/conventions/<int:convention_id>/abondement", methods=["POST"],
          permission=Permission.CONFIRM_TRANCHES)
def confirm_abondement(convention_id: int):
    found = get_or_404(Convention, convention_id)
    tranche = allocation.confirm_abondement(db.session, found, actor=current_actor(),
                                            today=today())
    db.session.commit()
    flash(f"Abondement de {format_count(tranche.quantity)} pass confirmé pour "
          f"{found.commune.name}.", "success")
    return redirect_to(url_for(".allocation_page", programme_id=found.programme_id))


@bp.route("/conventions/<int:convention_id>/sanction", methods=["POST"],
          permission=Permission.ORDER_SANCTIONS)
def order_sanction(convention_id: int):
    found = get_or_404(Convention, convention_id)
    kind = forms.choice("kind", "Sanction", SanctionKind)
    quantity = forms.integer("quantity", "Nombre de pass", minimum=0, maximum=10_000_000,
                             required=kind in (SanctionKind.RESTITUTION, SanctionKind.REDUCTION))
    allocation.order_sanction(db.session, found, kind, reason=forms.text(
        "reason", "Motif", max_length=800), quantity=quantity, actor=current_actor(),
        today=today())
    db.session.commit()
    flash(f"Décision enregistrée : {kind.label}.", "success")
    return redirect_to(url_for(".convention", convention_id=found.id))


@bp.route("/conventions/<int:convention_id>/referent", methods=["POST"],
          permission=Permission.MANAGE_CONVENTIONS)
def set_referent(convention_id: int):
    found = get_or_404(Convention, convention_id)
    event = set_referent_from_form(found)
    db.session.commit()
    flash(event.summary, "success")
    return redirect_to(url_for(".convention", convention_id=found.id))

