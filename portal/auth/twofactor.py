"""Views of the second factor: code after the password, enrolment.

Between the password and the code the browser is *not* signed in: the
signed Flask session only holds ``pending_2fa`` (user id, a fingerprint of
the password hash, the time, where to go next). The ``AuthSession`` row —
what makes a cookie worth anything — is created only after a valid code, so
a user who must pass the second factor can reach nothing else.
"""
from __future__ import annotations

import time

from flask import (Blueprint, current_app, flash, redirect, request, session,
                   url_for)
from flask_login import current_user, login_user

from portal.auth import totp
from portal.auth.identity import SignedInUser
from portal.domain import accounts
from portal.domain.errors import InvalidInput, TooManyAttempts
from portal.extensions import db
from portal.security import twofactor
from portal.security.throttle import Throttle
from portal.web.gate import authenticated, public
from portal.web.render import render

bp = Blueprint("second_factor", __name__)

PENDING_KEY = "pending_2fa"
PENDING_MAX_AGE = 10 * 60
# Code guessing: 5 wrong codes per account per 15 minutes (a code has 10^6
# values and 3 are valid at a time: 5 tries give 1.5e-5 per window).
CODE_LIMITS = {"second_factor": (5, 900)}


def _throttle() -> Throttle:
    return Throttle(current_app.extensions["throttle"].backend, CODE_LIMITS, prefix="pn:2fa")


def _fingerprint(user) -> str:
    return user.password_hash[-16:]


def begin(user, next_url: str | None):
    """Called by the login view once the password is right."""
    session.clear()
    session[PENDING_KEY] = {"u": user.id, "f": _fingerprint(user), "t": int(time.time()),
                            "n": next_url or ""}
    if twofactor.is_enrolled(db.session, user):
        return redirect(url_for("second_factor.verify"), code=303)
    return redirect(url_for("second_factor.enrol"), code=303)


def _pending_user():
    data = session.get(PENDING_KEY)
    if not isinstance(data, dict):
        return None
    try:
        user = db.session.get(accounts.User, int(data["u"]))
        started = int(data["t"])
    except (KeyError, TypeError, ValueError):
        return None
    if (user is None or not user.is_active or data.get("f") != _fingerprint(user)
            or time.time() - started > PENDING_MAX_AGE):
        return None
    return user


def _expired():
    session.pop(PENDING_KEY, None)
    flash("Votre connexion a expiré. Saisissez à nouveau votre mot de passe.", "warning")
    return redirect(url_for("auth.login"), code=303)


def finish_login(user) -> str:
    """Open the sign-in session; returns where to go next."""
    next_url = (session.get(PENDING_KEY) or {}).get("n") or url_for("auth.spaces")
    from portal.web.sessions import purge_expired
    purge_expired()
    auth = accounts.open_session(db.session, user, request.user_agent.string)
    db.session.commit()
    session.clear()
    session.permanent = True
    login_user(SignedInUser(user, auth.id))
    return next_url


def _check_throttle(user):
    try:
        _throttle().check(second_factor=str(user.id))
    except TooManyAttempts:
        _journal(user, "signin.locked")
        raise


def _journal(user, action: str) -> None:
    """Wrong second-factor codes and lockouts go to the action journal (issue 13)."""
    from portal.auth.views import journal_signin
    journal_signin(action, user.email, step="second facteur")


@bp.route("/connexion/verification", methods=["GET", "POST"])
@public
def verify():
    user = _pending_user()
    if user is None:
        return _expired()
    if not twofactor.is_enrolled(db.session, user):
        return redirect(url_for("second_factor.enrol"), code=303)
    if request.method == "POST":
        _check_throttle(user)
        try:
            method = twofactor.verify(db.session, user, request.form.get("code", "")[:64])
        except InvalidInput as error:
            db.session.rollback()
            _throttle().failure(second_factor=str(user.id))
            _journal(user, "signin.failed")
            return render("auth/second_factor.html", status_code=422, error=error.message)
        _throttle().reset(second_factor=str(user.id))
        target = finish_login(user)
        if method == "recovery":
            left = twofactor.remaining_recovery_codes(db.session, user)
            flash(f"Code de secours utilisé : il vous en reste {left}. Pensez à en générer "
                  "de nouveaux depuis « Mon compte ».", "warning")
        return redirect(target, code=303)
    return render("auth/second_factor.html")


@bp.route("/connexion/activation-double-authentification", methods=["GET", "POST"])
@public
def enrol():
    user = _pending_user()
    if user is None:
        return _expired()
    if twofactor.is_enrolled(db.session, user):
        return redirect(url_for("second_factor.verify"), code=303)
    cred = twofactor.start_enrolment(db.session, user)
    db.session.commit()
    error = None
    if request.method == "POST":
        _check_throttle(user)
        try:
            codes = twofactor.confirm_enrolment(db.session, user,
                                                request.form.get("code", "")[:64])
        except InvalidInput as exc:
            db.session.rollback()
            _throttle().failure(second_factor=str(user.id))
            error = exc.message
        else:
            _throttle().reset(second_factor=str(user.id))
            target = finish_login(user)
            return render("auth/recovery_codes.html", codes=codes, next_url=target)
    uri = totp.provisioning_uri(cred.secret, user.email)
    grouped = " ".join(cred.secret[i:i + 4] for i in range(0, len(cred.secret), 4))
    return render("auth/enrol.html", status_code=422 if error else 200, error=error,
                  secret=grouped, qr_svg=totp.qr_svg(uri), uri=uri)


@bp.route("/mon-compte/double-authentification", methods=["GET", "POST"])
@authenticated
def manage():
    """Own second factor: status and new recovery codes (needs a current code)."""
    user = current_user.user
    enrolled = twofactor.is_enrolled(db.session, user)
    if enrolled and request.method == "POST":
        _check_throttle(user)
        try:
            twofactor.verify(db.session, user, request.form.get("code", "")[:64])
        except InvalidInput as exc:
            # Counted outside the database (the rollback keeps it); the form comes back with
            # the message at the code field (portal/web/refill.py).
            _throttle().failure(second_factor=str(user.id))
            exc.field = "code"
            raise
        _throttle().reset(second_factor=str(user.id))
        codes = twofactor.new_recovery_codes(db.session, user)
        db.session.commit()
        return render("auth/recovery_codes.html", codes=codes,
                      next_url=url_for("auth.account"), regenerated=True)
    return render("auth/second_factor_manage.html", enrolled=enrolled,
                  required=twofactor.required(db.session, user),
                  remaining=twofactor.remaining_recovery_codes(db.session, user))
