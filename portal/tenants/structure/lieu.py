"""The administrator of a lieu keeps its public fields (national schema
« lieux de médiation numérique ») up to date (issue 13)."""
from __future__ import annotations

from flask import flash, request, url_for

from portal.domain import structures
from portal.domain.permissions import Permission
from portal.extensions import db
from portal.tenants.structure import bp
from portal.web.actor import current_actor
from portal.web.formpage import blank, client_ip
from portal.web.gate import current_tenant
from portal.web.render import redirect_to, render

FIELDS = ("typologie", "telephone", "courriels", "site_web", "horaires", "presentation_resume")


def _context() -> dict:
    return {"services": structures.SERVICES, "typologies": structures.TYPOLOGIES}


@bp.route("/lieu", permission=Permission.MANAGE_STRUCTURE)
def lieu_page():
    lieu = structures.lieu_of(db.session, current_tenant())
    values = blank({k: getattr(lieu, k) for k in (*FIELDS, "services")} if lieu else {})
    return render("onboarding/lieu.html", values=values, lieu=lieu, **_context())


@bp.route("/lieu", methods=["POST"], permission=Permission.MANAGE_STRUCTURE)
def lieu_save():
    data = {k: request.form.get(k, "") for k in FIELDS}
    data["services"] = request.form.getlist("services")
    structures.set_public_fields(db.session, current_tenant(), data, actor=current_actor(),
                                 ip=client_ip())
    db.session.commit()
    flash("Informations publiques du lieu enregistrées.", "success")
    return redirect_to(url_for(".lieu_page"))
