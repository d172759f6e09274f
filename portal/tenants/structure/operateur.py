"""Opérateur administration by the structure's admin: SIRET, service
catalogue, bank details (reviewed by #APTIC), API tokens (issue 6)."""
from __future__ import annotations

from flask import flash, url_for

from portal.domain import api_tokens, operateurs
from portal.domain.permissions import Permission
from portal.extensions import db
from portal.models import ApiToken, BankDetails, OperateurService
from portal.tenants.structure import bp
from portal.web import forms
from portal.web.actor import current_actor
from portal.web.gate import current_tenant
from portal.web.render import redirect_to, render
from portal.web.scoping import get_or_404, scoped_select


def _page(new_token: str | None = None, status: int = 200):
    structure = current_tenant()
    return render("tenants/structure/operateur.html", status_code=status,
                  profile=operateurs.profile_of(db.session, structure, create=False),
                  services=list(db.session.execute(scoped_select(OperateurService)
                                                   .order_by(OperateurService.name)).scalars()),
                  bank=operateurs.current_bank_details(db.session, structure.id),
                  bank_requests=list(db.session.execute(scoped_select(BankDetails).order_by(
                      BankDetails.id.desc()).limit(5)).scalars()),
                  tokens=api_tokens.tokens_of(db.session, structure.id), new_token=new_token,
                  revoked_tokens=api_tokens.revoked_count(db.session, structure.id),
                  revoked_shown=api_tokens.REVOKED_SHOWN)


@bp.route("/operateur", permission=Permission.MANAGE_STRUCTURE)
def operateur_page():
    return _page()


@bp.route("/operateur/siret", methods=["POST"], permission=Permission.MANAGE_STRUCTURE)
def operateur_siret():
    operateurs.set_siret(db.session, current_tenant(), forms.text("siret", "SIRET", max_length=20))
    db.session.commit()
    flash("SIRET enregistré.", "success")
    return redirect_to(url_for("structure.operateur_page"))


@bp.route("/operateur/identite", methods=["POST"], permission=Permission.MANAGE_STRUCTURE)
def operateur_identity():
    operateurs.set_identity(db.session, current_tenant(),
                            legal_representative=forms.text("legal_representative",
                                                            "Représentant légal"),
                            is_public_body=forms.boolean("is_public_body"))
    db.session.commit()
    flash("Identité de la structure enregistrée.", "success")
    return redirect_to(url_for("structure.operateur_page"))


@bp.route("/operateur/services", methods=["POST"], permission=Permission.MANAGE_STRUCTURE)
def operateur_add_service():
    operateurs.add_service(db.session, current_tenant(), name=forms.text("name", "Service"),
                           price_pass=forms.integer("price_pass", "Prix en pass", minimum=1,
                                                    maximum=10),
                           duration_minutes=forms.integer("duration_minutes", "Durée (minutes)",
                                                          minimum=5, maximum=600))
    db.session.commit()
    flash("Service ajouté au catalogue.", "success")
    return redirect_to(url_for("structure.operateur_page"))


@bp.route("/operateur/services/<int:service_id>/retirer", methods=["POST"],
          permission=Permission.MANAGE_STRUCTURE)
def operateur_remove_service(service_id: int):
    service = get_or_404(OperateurService, service_id)
    service.active = False
    db.session.commit()
    flash("Service retiré du catalogue.", "success")
    return redirect_to(url_for("structure.operateur_page"))


@bp.route("/operateur/iban", methods=["POST"], permission=Permission.MANAGE_STRUCTURE)
def operateur_bank():
    operateurs.submit_bank_details(db.session, current_tenant(),
                                   holder=forms.text("holder", "Titulaire"),
                                   iban=forms.text("iban", "IBAN", max_length=50),
                                   bic=forms.text("bic", "BIC", max_length=20),
                                   actor=current_actor())
    db.session.commit()
    flash("Coordonnées bancaires envoyées : #APTIC doit les vérifier avant tout paiement.",
          "success")
    return redirect_to(url_for("structure.operateur_page"))


@bp.route("/operateur/jetons", methods=["POST"], permission=Permission.MANAGE_STRUCTURE)
def operateur_create_token():
    _row, token = api_tokens.create(db.session, current_tenant(),
                                    forms.text("name", "Nom du jeton", max_length=100),
                                    current_actor())
    db.session.commit()
    return _page(new_token=token, status=201)


@bp.route("/operateur/jetons/<int:token_id>/revoquer", methods=["POST"],
          permission=Permission.MANAGE_STRUCTURE)
def operateur_revoke_token(token_id: int):
    api_tokens.revoke(db.session, get_or_404(ApiToken, token_id))
    db.session.commit()
    flash("Jeton révoqué : il ne donne plus accès à l'API.", "success")
    return redirect_to(url_for("structure.operateur_page"))
