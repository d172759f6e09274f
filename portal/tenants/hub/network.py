"""Hub Francil'IN: network of each commune (prescripteurs, opérateurs,
facilitateurs), trainings and attendance, opinions given (art. 1, 4)."""
from __future__ import annotations

from flask import abort, flash, request, url_for

from portal.domain import network
from portal.domain.permissions import Permission
from portal.extensions import db
from portal.models import Tenant
from portal.tenants.hub import bp
from portal.web import forms
from portal.web.gate import current_tenant
from portal.web.render import redirect_to, render


@bp.route("/reseau", permission=Permission.VIEW_TENANT)
def network_page():
    hub = current_tenant()
    nets = network.networks(db.session, hub)
    names = {s.id: s.name for n in nets for s in n.prescripteurs + n.operateurs}
    return render("tenants/hub/network.html", networks=nets,
                  trainings=network.trainings_of(db.session, hub), names=names,
                  opinions=network.opinions_of(db.session, hub))


@bp.route("/reseau/facilitateurs", methods=["POST"], permission=Permission.MANAGE_HUB_NETWORK)
def add_facilitateur():
    commune_id = forms.integer("commune_id", "Commune", minimum=1)
    if commune_id not in {c.id for c in network.communes_followed(db.session)}:
        abort(404)
    commune = db.session.get(Tenant, commune_id)
    network.add_facilitateur(db.session, current_tenant(), commune,
                             forms.text("name", "Nom"),
                             forms.text("organisation", "Organisation", required=False))
    db.session.commit()
    flash("Facilitateur ajouté.", "success")
    return redirect_to(url_for(".network_page"))


@bp.route("/reseau/formations", methods=["POST"], permission=Permission.MANAGE_HUB_NETWORK)
def record_training():
    try:
        structures = [int(v) for v in request.form.getlist("structures")]
    except ValueError:
        structures = [-1]
    network.record_training(db.session, current_tenant(), held_on=forms.date("held_on", "Date"),
                            topic=forms.text("topic", "Thème", max_length=300),
                            structure_ids=structures)
    db.session.commit()
    flash("Formation enregistrée.", "success")
    return redirect_to(url_for(".network_page"))
