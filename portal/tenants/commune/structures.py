"""The référent registers the structures of its commune and invites their
first administrator (issue 13)."""
from __future__ import annotations

from flask import flash, url_for

from portal.domain import structures
from portal.domain.permissions import Permission
from portal.extensions import db
from portal.tenants.commune import bp
from portal.web.actor import current_actor
from portal.web.formpage import blank, client_ip, send_invitation, structure_form_data
from portal.web.gate import current_tenant
from portal.web.render import redirect_to, render


@bp.route("/structures", permission=Permission.VIEW_TENANT)
def structures_page():
    return render("onboarding/structures.html", communes=None,
                  rows=structures.structures_of(db.session, current_tenant()),
                  values=blank({"postal_code": current_tenant().postal_code,
                                "city": current_tenant().city}),
                  action=url_for(".register_structure"))


@bp.route("/structures", methods=["POST"], permission=Permission.REGISTER_STRUCTURES)
def register_structure():
    structure, invitation, token = structures.register_structure(
        db.session, current_tenant(), structure_form_data(), actor=current_actor(),
        ip=client_ip())
    db.session.commit()
    send_invitation(invitation, token)
    flash(f"{structure.name} est enregistrée ; {invitation.email} est invité(e) à "
          "l'administrer.", "success")
    return redirect_to(url_for(".structures_page"))
