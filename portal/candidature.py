"""Public page « Devenir lieu qualifié »: a mediation place applies (issue 13).

The application (``portal.domain.structures.apply``) enters #APTIC's
qualification pipeline, then the commune's approval; the applicant is
invited once both are given. Applications are limited per IP address
(``CANDIDATURES_PER_IP`` per hour) so that the public form cannot flood the
pipeline.
"""
from __future__ import annotations

from flask import Blueprint, current_app, request, url_for

from portal.domain import structures
from portal.extensions import db
from portal.web.formpage import blank, client_ip
from portal.web.gate import public
from portal.web.render import redirect_to, render

bp = Blueprint("candidature", __name__)
CANDIDATURES_PER_IP = (10, 3600)


def _context() -> dict:
    return {"communes": structures.applicable_communes(db.session),
            "services": structures.SERVICES}


@bp.route("/devenir-lieu-qualifie")
@public
def form():
    return render("onboarding/candidature.html", values=blank(), **_context())


@bp.route("/devenir-lieu-qualifie", methods=["POST"])
@public
def submit():
    throttle = current_app.extensions["throttle"]
    throttle.limits.setdefault("candidature", CANDIDATURES_PER_IP)
    ip = client_ip() or "?"
    form_data = request.form
    raw_commune = form_data.get("commune_id", "")
    data = {key: form_data.get(key, "") for key in (
        "name", "siret", "address_line", "postal_code", "city", "telephone", "site_web",
        "horaires", "presentation_resume", "contact_name", "contact_email", "contact_phone")}
    data["commune_id"] = int(raw_commune) if raw_commune.isdigit() and len(raw_commune) < 10 else None
    data["services"] = form_data.getlist("services")
    throttle.check(candidature=ip)
    structures.apply(db.session, data, ip=client_ip())
    db.session.commit()
    throttle.failure(candidature=ip)
    return redirect_to(url_for(".received"))


@bp.route("/devenir-lieu-qualifie/merci")
@public
def received():
    return render("onboarding/candidature_received.html")
