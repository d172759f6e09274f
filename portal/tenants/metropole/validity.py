"""The commanditaire's end-of-validity decisions (issue 6, point 9): validate
the J-15 blocking, acknowledge at J-7."""
from __future__ import annotations


from flask import flash, url_for

from portal.domain import issuance, validity
from portal.domain.permissions import Permission
from portal.extensions import db
from portal.models import Programme
from portal.tenants.metropole import bp
from portal.web.actor import current_actor
from portal.web.gate import current_tenant
from portal.web.render import redirect_to, render
from portal.web.scoping import get_or_404
from portal.web.clock import today


@bp.route("/fin-de-validite", permission=Permission.VIEW_TENANT)
def validity_page():
    return render("tenants/metropole/validity.html",
                  programmes=issuance.programmes_of(db.session, current_tenant()))


@bp.route("/fin-de-validite/<int:programme_id>/bloquer", methods=["POST"],
          permission=Permission.END_OF_VALIDITY)
def validate_blocking(programme_id: int):
    validity.validate_blocking(db.session, get_or_404(Programme, programme_id),
                               actor=current_actor(), today=today())
    db.session.commit()
    flash("Blocage validé : les prescripteurs ne peuvent plus remettre de pass de ce programme.",
          "success")
    return redirect_to(url_for("metropole.validity_page"))


@bp.route("/fin-de-validite/<int:programme_id>/prendre-acte", methods=["POST"],
          permission=Permission.END_OF_VALIDITY)
def acknowledge(programme_id: int):
    validity.acknowledge_cost(db.session, get_or_404(Programme, programme_id),
                              actor=current_actor(), today=today())
    db.session.commit()
    flash("Prise d'acte enregistrée.", "success")
    return redirect_to(url_for("metropole.validity_page"))
