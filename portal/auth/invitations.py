"""The invitation link: ``/invitation/<token>`` (issue 13 items 1 and 5).

A new address sets its name and password; an existing account signs in
with its own password (or is already signed in) and gains the membership.
Administrators of the Métropole, #APTIC and the Hub then enrol their second
factor as at any sign-in (``portal.auth.twofactor``).
"""
from __future__ import annotations

from flask import Blueprint, current_app, flash, request, session
from flask_login import current_user, login_user

from portal.auth.identity import SignedInUser
from portal.domain import accounts, invitations
from portal.domain.errors import InvalidInput, NotAllowed
from portal.extensions import db
from portal.security import twofactor
from portal.web.gate import public
from portal.web.render import redirect_to, render

bp = Blueprint("invitations", __name__)


def _home_of(tenant) -> str:
    from portal.auth.views import tenant_home_url
    return tenant_home_url(tenant)


def _sign_in(user, tenant):
    """Open the session (or go through the second factor first)."""
    from portal.auth import twofactor as second_factor_views
    target = _home_of(tenant)
    if twofactor.required(db.session, user):
        return second_factor_views.begin(user, target)
    from portal.web.sessions import purge_expired
    purge_expired()
    auth = accounts.open_session(db.session, user, request.user_agent.string)
    db.session.commit()
    session.clear()
    session.permanent = True
    login_user(SignedInUser(user, auth.id))
    return redirect_to(target)


@bp.route("/invitation/<token>", methods=["GET", "POST"])
@public
def accept(token: str):
    invitation = invitations.find(db.session, token)
    tenant = invitation.tenant
    signed_in = current_user.is_authenticated
    if signed_in and accounts.normalise_email(current_user.email) != invitation.email:
        raise NotAllowed("Cette invitation a été envoyée à une autre adresse électronique : "
                         "elle ne peut pas être utilisée avec le compte connecté. "
                         "Déconnectez-vous puis rouvrez le lien.")
    exists = invitations.account_exists(db.session, invitation)
    if request.method == "POST":
        if signed_in:
            invitations.accept_existing_account(db.session, invitation, user=current_user.user)
            db.session.commit()
            flash(f"Vous êtes maintenant membre de {tenant.name}.", "success")
            return redirect_to(_home_of(tenant))
        if exists:
            throttle = current_app.extensions["throttle"]
            ip = request.remote_addr or "inconnue"
            keys = {"per_ip": ip, "per_account_ip": f"{invitation.email}|{ip}",
                    "per_account": invitation.email}
            throttle.check(**keys)
            user = accounts.authenticate(db.session, invitation.email,
                                         request.form.get("password", "")[:256])
            if user is None:
                # The throttle's counter lives outside the database: the rollback keeps it.
                throttle.failure(**keys)
                raise InvalidInput("Mot de passe incorrect.", field="password")
            invitations.accept_existing_account(db.session, invitation, user=user)
            db.session.commit()
            return _sign_in(user, tenant)
        # A refused name or password: the page comes back filled (portal/web/refill.py).
        user = invitations.accept_new_account(
            db.session, invitation, full_name=request.form.get("full_name", "")[:300],
            password=request.form.get("password", "")[:300],
            confirm=request.form.get("confirm_password", "")[:300])
        db.session.commit()
        return _sign_in(user, tenant)
    return render("accounts/accept.html",
                  invitation=invitation, invited_tenant=tenant, exists=exists, signed_in=signed_in,
                  token=token,
                  needs_second_factor=invitation.role in twofactor.ADMIN_ROLES)

