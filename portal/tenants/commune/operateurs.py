"""The commune approves the opérateurs of its territory (issue 6, point 1)."""
from __future__ import annotations

from flask import abort, flash, url_for

from portal.domain import structures
from portal.domain import operateurs
from portal.domain.permissions import Permission
from portal.extensions import db
from portal.models import Tenant
from portal.tenants.commune import bp
from portal.web import forms
from portal.web.formpage import send_invitation
from portal.web.actor import current_actor
from portal.web.gate import current_tenant
from portal.web.render import redirect_to, render


@bp.route("/operateurs", permission=Permission.VIEW_TENANT)
def operateurs_page():
    return render("tenants/commune/operateurs.html",
                  rows=operateurs.operateurs(db.session, commune_id=current_tenant().id))


@bp.route("/operateurs/<int:structure_id>/approbation", methods=["POST"],
          permission=Permission.APPROVE_OPERATEURS)
def approve(structure_id: int):
    structure = db.session.get(Tenant, structure_id) if 0 < structure_id < 2**31 else None
    if structure is None or structure.parent_id != current_tenant().id or not structure.is_operateur:
        abort(404)
    operateurs.approve_by_commune(db.session, current_tenant(), structure,
                                  approve=forms.boolean("approve"), actor=current_actor())
    invited = structures.invite_accepted_applicant(db.session, structure, actor=current_actor())
    db.session.commit()
    flash(f"Décision enregistrée pour {structure.name}.", "success")
    if invited:
        send_invitation(*invited)
        flash(f"Candidature acceptée : {invited[0].email} est invité(e) à administrer le lieu.",
              "success")
    return redirect_to(url_for("commune.operateurs_page"))
