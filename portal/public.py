"""Public endpoints: health check, the pass page a QR code opens, manual check."""
from __future__ import annotations

import uuid

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify, request
from flask_login import current_user

from portal.domain import operateurs, passcheck
from portal.domain.errors import DomainError
from portal.extensions import db
from portal.web.gate import public
from portal.web.render import render
from portal.web.clock import today

bp = Blueprint("public", __name__)


@bp.route("/healthz")
@public
def healthz():
    try:
        db.session.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        db.session.rollback()
        return jsonify({"status": "indisponible", "database": "injoignable"}), 503
    return jsonify({"status": "ok", "database": "ok"})


def _guarded_lookup(find):
    """Run a pass lookup; count failures per IP and refuse after too many."""
    throttle = current_app.extensions["throttle"]
    ip = request.remote_addr or "inconnue"
    return throttle.guard(find, (DomainError,), pass_check=ip)


@bp.route("/P/<path:token>")
@bp.route("/p/<path:token>")
@public
def pass_page(token: str):
    """The page a pass's QR code opens in any phone camera app."""
    found = _guarded_lookup(lambda: passcheck.find_scanned(db.session, token[:300]))
    status = passcheck.status_of(db.session, found, today())
    places = (operateurs.scan_places(db.session, current_user.id)
              if status.valid and current_user.is_authenticated else [])
    return render("public/pass.html", status=status, scan_places=places, scan_code=token[:300],
                  scan_key=uuid.uuid4().hex)


@bp.route("/verifier", methods=["GET", "POST"])
@public
def check_pass():
    """Check a pass by its printed serial and verification code."""
    if request.method == "GET":
        return render("public/check.html")
    serial = request.form.get("serial", "")[:200]
    code = request.form.get("code", "")[:50]
    found = _guarded_lookup(lambda: passcheck.find_typed(db.session, serial, code))
    status = passcheck.status_of(db.session, found, today())
    return render("public/pass.html", partial="public/_pass_status.html", status=status)
