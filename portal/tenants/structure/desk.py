"""The prescripteur's desk: "Remettre un carnet" (convention art. 8)."""
from __future__ import annotations

import io
import secrets

import sqlalchemy as sa
from flask import abort, flash, request, send_file, url_for
from flask_login import current_user

from portal.domain import commanditaires, distribution, issuance, mandate as mandates
from portal.domain.permissions import Permission
from portal.extensions import db
from portal.models import Distribution, Programme, ProgrammePerimeter, Tenant
from portal.printing.carnets import render_explanatory_document
from portal.tenants.structure import bp
from portal.web import forms
from portal.web.clock import today
from portal.web.gate import current_tenant
from portal.web.render import redirect_to, render


def _programmes(structure: Tenant) -> list[Programme]:
    return list(db.session.execute(
        sa.select(Programme).join(ProgrammePerimeter)
        .where(ProgrammePerimeter.tenant_id == structure.parent_id)
        .order_by(Programme.id.desc())).scalars())


@bp.route("/remise", permission=Permission.HAND_OUT_PASS)
def desk():
    structure = current_tenant()
    stock = distribution.structure_stock(db.session, structure)
    programmes = [p for p in _programmes(structure) if p.id in stock]
    check = mandates.valid_habilitation(db.session, current_user.id, structure.id, today())
    recent = db.session.execute(sa.select(Distribution).where(
        Distribution.structure_id == structure.id, Distribution.user_id == current_user.id)
        .order_by(Distribution.id.desc()).limit(10)).scalars().all()
    return render("tenants/structure/desk.html", programmes=programmes, stock=stock,
                  check=check, recent=recent, token=secrets.token_urlsafe(24),
                  needs=distribution.NEEDS, questionnaire=distribution.QUESTIONNAIRE,
                  publics=issuance.TARGET_PUBLICS)


@bp.route("/remise", methods=["POST"], permission=Permission.HAND_OUT_PASS)
def hand_out():
    structure = current_tenant()
    programme = next((p for p in _programmes(structure)
                      if p.id == forms.integer("programme_id", "Programme", minimum=1)), None)
    if programme is None:
        abort(404)
    token = forms.text("request_token", "Jeton du formulaire", max_length=64)
    fields = dict(
        programme=programme, structure=structure, user_id=current_user.id,
        carnet_number=forms.integer("carnet_number", "Numéro du carnet", minimum=1,
                                    maximum=9_999_999),
        pass_count=forms.integer("pass_count", "Nombre de pass", minimum=1, maximum=99,
                                 required=False),
        target_public=forms.text("target_public", "Public cible", max_length=40),
        needs=request.form.getlist("needs")[:20],
        answers={q: request.form.get(q, "")[:40] for q in distribution.QUESTIONNAIRE},
        request_token=token, today=today())
    try:
        done = distribution.hand_out(db.session, **fields)
        db.session.commit()
    except sa.exc.IntegrityError:
        # The same form sent twice at once: the first one won, show it.
        db.session.rollback()
        done = db.session.execute(sa.select(Distribution).where(
            Distribution.request_token == token)).scalar_one()
    flash(f"Carnet n° {done.carnet.number} remis ({done.pass_count} pass). Code bénéficiaire à "
          f"inscrire sur le carnet : {done.beneficiary.code}", "success")
    return redirect_to(url_for(".desk"))


@bp.route("/distributions", permission=Permission.HAND_OUT_PASS)
def distributions():
    rows = db.session.execute(sa.select(Distribution).where(
        Distribution.tenant_clause(current_tenant())).order_by(Distribution.id.desc())
        .limit(500)).scalars().all()
    return render("tenants/structure/distributions.html", distributions=rows,
                  publics=issuance.TARGET_PUBLICS)


@bp.route("/programmes/<int:programme_id>/document-explicatif.pdf",
          permission=Permission.HAND_OUT_PASS)
def explanatory_document(programme_id: int):
    structure = current_tenant()
    programme = next((p for p in _programmes(structure) if p.id == programme_id), None)
    if programme is None:
        abort(404)
    commanditaires.ensure_running(programme, today(), "document explicatif")
    commune = structure.parent
    operateurs = db.session.execute(sa.select(Tenant).where(
        Tenant.parent_id == commune.id, Tenant.is_operateur.is_(True)).order_by(Tenant.name)
    ).scalars().all()
    out = io.BytesIO()
    render_explanatory_document(commune.name, programme.name, programme.valid_until,
                                [{"name": o.name, "address": o.full_address, "services": []}
                                 for o in operateurs], out)
    out.seek(0)
    return send_file(out, mimetype="application/pdf", as_attachment=True,
                     download_name=f"pass-numerique-{commune.slug}.pdf")


