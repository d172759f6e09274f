"""Views: connexion, déconnexion, mot de passe oublié, choix de l'espace."""
from __future__ import annotations

import logging
from urllib.parse import unquote, urlsplit

from flask import (Blueprint, current_app, flash, redirect, request, session,
                   url_for)
from flask_login import current_user, login_user, logout_user
from itsdangerous import BadSignature, URLSafeTimedSerializer

from portal.domain import accounts
from portal.domain.errors import InvalidInput, TooManyAttempts
from portal.extensions import db
from portal.jobs import enqueue
from portal.mail import send_mail
from portal.auth import twofactor as second_factor
from portal.auth.identity import SignedInUser
from portal.security import twofactor
from portal.web import forms
from portal.web.gate import URL_SEGMENT, authenticated, public
from portal.web.render import render

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)


def tenant_home_url(tenant) -> str:
    return url_for(f"{URL_SEGMENT[tenant.kind]}.home", tenant_slug=tenant.slug)


def _safe_next(target: str | None) -> str | None:
    """A local path only. Browsers read ``/\\host`` as ``//host`` and drop
    tabs and newlines inside URLs, so backslashes and control characters are
    refused outright, as is anything with a scheme or a host (OWASP,
    unvalidated redirects)."""
    if not target or len(target) > 2000:
        return None
    if "\\" in target or any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in target):
        return None
    parts = urlsplit(target)
    if (parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//")
            or unquote(target).startswith(("//", "/\\"))):
        return None
    return target


def _client_ip() -> str:
    return request.remote_addr or "inconnue"


def journal_signin(action: str, email: str, *, step: str | None = None) -> None:
    """Sign-in failures and lockouts go to the journal of each tenant the
    account belongs to (an unknown address: to #APTIC's, which reads all).
    Committed at once: the error response rolls back."""
    from portal.domain import journal
    user = accounts.find_user(db.session, email)
    tenant_ids = [m.tenant_id for m in accounts.memberships_of(db.session, user.id)] if user else []
    for tenant_id in tenant_ids or [None]:
        journal.record(db.session, action=action, actor=None, tenant_id=tenant_id,
                       target="compte", target_id=user.id if user else None,
                       after={"email": email[:254], **({"étape": step} if step else {})},
                       ip=_client_ip())
    db.session.commit()


@bp.route("/")
@public
def index():
    if current_user.is_authenticated:
        return redirect(url_for("auth.spaces"))
    return redirect(url_for("auth.login"))


@bp.route("/connexion", methods=["GET", "POST"])
@public
def login():
    if request.method == "GET":
        return render("auth/login.html", next=_safe_next(request.args.get("next")))
    throttle = current_app.extensions["throttle"]
    email = accounts.normalise_email(request.form.get("email", ""))[:254]
    password = request.form.get("password", "")[:256]
    ip = _client_ip()
    keys = {"per_ip": ip, "per_account_ip": f"{email}|{ip}", "per_account": email}
    try:
        throttle.check(**keys)
    except TooManyAttempts:
        journal_signin("signin.locked", email)
        raise
    user = accounts.authenticate(db.session, email, password)
    if user is None:
        throttle.failure(**keys)
        journal_signin("signin.failed", email)
        return render("auth/login.html", status_code=401, email=email,
                      next=_safe_next(request.form.get("next")),
                      error="Adresse électronique ou mot de passe incorrect.")
    throttle.reset(per_account_ip=f"{email}|{ip}")
    throttle.succeeded(per_ip=ip, per_account=email)   # only failures count
    if twofactor.required(db.session, user):
        return second_factor.begin(user, _safe_next(request.form.get("next")))
    from portal.web.sessions import purge_expired
    purge_expired()
    auth = accounts.open_session(db.session, user, request.user_agent.string)
    db.session.commit()
    session.clear()
    session.permanent = True
    login_user(SignedInUser(user, auth.id))
    return redirect(_safe_next(request.form.get("next")) or url_for("auth.spaces"), code=303)


@bp.route("/confirmer-mot-de-passe", methods=["GET", "POST"])
@authenticated
def confirm_password():
    """Sensitive actions ask for the password again after a few minutes
    (issue 13 item 7, ``portal.web.sessions``)."""
    next_url = _safe_next(request.values.get("next")) or url_for("auth.spaces")
    if "\\" in next_url:
        next_url = url_for("auth.spaces")
    if request.method == "POST":
        throttle = current_app.extensions["throttle"]
        email, ip = current_user.email, _client_ip()
        keys = {"per_ip": ip, "per_account_ip": f"{email}|{ip}", "per_account": email}
        throttle.check(**keys)
        if accounts.authenticate(db.session, email, request.form.get("password", "")[:256]) is None:
            throttle.failure(**keys)   # outside the database: the rollback keeps it
            raise InvalidInput("Mot de passe incorrect.", field="password")
        accounts.confirm_password(db.session, current_user.session_id)
        db.session.commit()
        flash("Mot de passe confirmé : vous pouvez reprendre votre action.", "success")
        return redirect(next_url, code=303)
    return render("auth/confirm_password.html", next=next_url)


@bp.route("/deconnexion", methods=["POST"])
@authenticated
def logout():
    accounts.close_session(db.session, current_user.session_id)
    db.session.commit()
    logout_user()
    session.clear()
    flash("Vous êtes déconnecté.", "info")
    return redirect(url_for("auth.login"), code=303)


@bp.route("/espaces")
@authenticated
def spaces():
    memberships = accounts.memberships_of(db.session, current_user.id)
    if len(memberships) == 1:
        return redirect(tenant_home_url(memberships[0].tenant))
    return render("auth/spaces.html", memberships=memberships, tenant_home_url=tenant_home_url)


@bp.route("/mon-compte", methods=["GET", "POST"])
@authenticated
def account():
    if request.method == "POST":
        user = current_user.user
        current = request.form.get("current_password", "")
        if accounts.authenticate(db.session, user.email, current) is None:
            raise InvalidInput("Le mot de passe actuel est incorrect.", field="current_password")
        new = request.form.get("new_password", "")
        if new != request.form.get("confirm_password", ""):
            raise InvalidInput("Les deux saisies du nouveau mot de passe diffèrent.",
                               field="confirm_password")
        accounts.change_password(db.session, user, new)
        db.session.commit()
        logout_user()
        session.clear()
        flash("Mot de passe modifié. Reconnectez-vous avec le nouveau mot de passe.", "success")
        return redirect(url_for("auth.login"), code=303)
    return render("auth/account.html",
                  memberships=accounts.memberships_of(db.session, current_user.id),
                  tenant_home_url=tenant_home_url)


def _reset_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="password-reset")


def _reset_fingerprint(user) -> str:
    # Changes with the password, so a link works once.
    return user.password_hash[-16:]


def send_reset_link(email: str) -> bool:
    """Job ``auth.password_reset``: mail a reset link if an active account has this address."""
    user = accounts.find_user(db.session, email)
    if user is None or not user.is_active:
        return False
    token = _reset_serializer().dumps({"u": user.id, "f": _reset_fingerprint(user)})
    link = url_for("auth.reset_password", token=token, _external=True)
    minutes = current_app.config["PASSWORD_RESET_MAX_AGE"] // 60
    send_mail(user.email, "Pass Numérique : réinitialisation de votre mot de passe",
              f"Bonjour {user.full_name},\n\nPour choisir un nouveau mot de passe, "
              f"ouvrez ce lien (valable {minutes} minutes) :\n{link}\n\n"
              "Si vous n'êtes pas à l'origine de cette demande, ignorez ce message.")
    return True


@bp.route("/mot-de-passe-oublie", methods=["GET", "POST"])
@public
def forgot_password():
    if request.method == "POST":
        email = forms.text("email", "Adresse électronique", max_length=254)
        throttle = current_app.extensions["throttle"]
        throttle.check(per_ip=_client_ip())
        throttle.failure(per_ip=_client_ip())  # every request counts against the IP
        # Same work and time whether or not the account exists: the request only
        # enqueues; the job looks the account up and sends only if it exists.
        enqueue("auth.password_reset", email)
        flash("Si un compte correspond à cette adresse, un lien de réinitialisation "
              "vient d'y être envoyé.", "info")
        return redirect(url_for("auth.login"), code=303)
    return render("auth/forgot.html")


@bp.route("/reinitialiser/<token>", methods=["GET", "POST"])
@public
def reset_password(token: str):
    invalid = InvalidInput("Ce lien de réinitialisation est invalide ou a expiré. "
                           "Faites une nouvelle demande.")
    try:
        data = _reset_serializer().loads(
            token, max_age=current_app.config["PASSWORD_RESET_MAX_AGE"])
        user = db.session.get(accounts.User, int(data["u"]))
    except (BadSignature, KeyError, TypeError, ValueError):
        raise invalid from None
    if user is None or not user.is_active or data.get("f") != _reset_fingerprint(user):
        raise invalid
    if request.method == "POST":
        new = request.form.get("new_password", "")
        if new != request.form.get("confirm_password", ""):
            raise InvalidInput("Les deux saisies du nouveau mot de passe diffèrent.",
                               field="confirm_password")
        accounts.change_password(db.session, user, new)
        db.session.commit()
        flash("Mot de passe enregistré. Vous pouvez vous connecter.", "success")
        return redirect(url_for("auth.login"), code=303)
    return render("auth/reset.html", token=token)
