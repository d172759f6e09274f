"""Sign-in session lifetime and password re-confirmation (issue 13 item 7).

* A sign-in session (``AuthSession``) ends after ``SESSION_IDLE_MINUTES``
  without a request and after ``SESSION_MAX_HOURS`` whatever the activity
  (checked by the user loader, ``portal.auth.identity``); expired rows are
  purged at every sign-in and by ``flask --app wsgi security purge-sessions``.
* Sensitive actions (validating an IBAN, validating or paying a statement,
  granting a habilitation, changing a member's role) ask for the password
  again when it was last typed more than ``REAUTH_MINUTES`` ago: the POST is
  refused before the view runs (nothing changes) and the browser goes to
  « Confirmer votre mot de passe », then back to the page it came from.
"""
from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

from flask import current_app, flash, g, redirect, request, url_for
from flask_login import current_user

from portal.domain import journal
from portal.domain.permissions import TenantKind
from portal.extensions import db, htmx
from portal.models import AuthSession, utcnow
from portal.web.gate import URL_SEGMENT

SENSITIVE_ENDPOINTS = frozenset({
    "mandataire.review_bank",           # IBAN review (validation of bank details)
    "mandataire.statement_validate",    # statement validated
    "mandataire.funds_account",         # the mandate's bank account (debtor of transfers)
    "mandataire.export_run",            # SEPA transfers ordered (issue 17)
    "mandataire.import_bank_statement", # bank statement: statements marked paid
    "mandataire.grant",                 # habilitation granted
    "mandataire.decide",                # habilitation request granted or refused
} | {f"{URL_SEGMENT[kind]}.change_member_role" for kind in TenantKind})


def limits(app=None) -> tuple[dt.timedelta, dt.timedelta]:
    config = (app or current_app).config
    return (dt.timedelta(minutes=config["SESSION_IDLE_MINUTES"]),
            dt.timedelta(hours=config["SESSION_MAX_HOURS"]))


def is_expired(auth: AuthSession, now: dt.datetime) -> bool:
    idle, absolute = limits()
    return auth.last_seen_at + idle <= now or auth.created_at + absolute <= now


def password_is_recent(now: dt.datetime | None = None) -> bool:
    now = now or utcnow()
    auth = db.session.get(AuthSession, current_user.session_id)
    window = dt.timedelta(minutes=current_app.config["REAUTH_MINUTES"])
    return auth is not None and auth.password_confirmed_at + window > now


def _back_path() -> str:
    """Where to come back after confirming: the page the form was on."""
    referrer = request.headers.get("HX-Current-URL") or request.referrer or ""
    parts = urlsplit(referrer)
    if parts.netloc and parts.netloc != request.host:
        return url_for("auth.spaces")
    path = parts.path or "/"
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        return url_for("auth.spaces")
    return path + (f"?{parts.query}" if parts.query else "")


def require_recent_password():
    """``before_request`` hook (after the gate): refuse a stale sensitive POST."""
    if request.method != "POST" or request.endpoint not in SENSITIVE_ENDPOINTS:
        return None
    if not current_user.is_authenticated or password_is_recent():
        return None
    target = url_for("auth.confirm_password", next=_back_path())
    flash("Action sensible : confirmez votre mot de passe, puis recommencez.", "warning")
    if htmx:
        response = current_app.response_class("", 204)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target, code=303)


def _set_journal_ip():
    journal.REQUEST_IP.set(request.remote_addr)
    g.journal_ip = request.remote_addr


def init_app(app):
    app.before_request(_set_journal_ip)
    app.before_request(require_recent_password)


def purge_expired() -> int:
    """Delete expired sign-in sessions (called at every sign-in)."""
    from portal.domain import accounts
    idle, absolute = limits()
    return accounts.purge_expired_sessions(db.session, idle=idle, absolute=absolute)
