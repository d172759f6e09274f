"""Public endpoints: health check, the pass page a QR code opens, manual check."""
from __future__ import annotations

import uuid

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify, request
from flask_login import current_user

from portal.domain import operateurs, passcheck
from portal.domain.errors import DomainError, InvalidInput, NotFound
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


@bp.route("/readyz")
@public
def readyz():
    """Readiness: database, Redis (the job queue) and queue depth; 503 when not ready."""
    from portal.jobs import get_queue
    body, ready = {"status": "ok"}, True
    try:
        db.session.execute(sa.text("SELECT 1"))
        body["database"] = "ok"
    except sa.exc.SQLAlchemyError:
        db.session.rollback()
        body["database"], ready = "injoignable", False
    queue = get_queue()
    body["queue"] = queue.name
    try:
        queue.ping()
        body["redis"] = "ok" if current_app.config["REDIS_URL"] else "non utilisé (tâches en ligne)"
        body["queue_depth"] = queue.depth()
    except Exception:           # redis.exceptions.ConnectionError, TimeoutError…
        body["redis"], ready = "injoignable", False
    if not ready:
        body["status"] = "indisponible"
    return jsonify(body), 200 if ready else 503


@bp.route("/metrics")
@public
def prometheus_metrics():
    """Prometheus metrics, only from METRICS_ALLOWED_IPS or with METRICS_TOKEN (404 otherwise)."""
    from flask import Response, abort

    from portal.jobs import get_queue
    from portal.observability import metrics
    config = current_app.config
    if not metrics.allowed(request.remote_addr, request.headers.get("Authorization", ""),
                           config["METRICS_TOKEN"], config["METRICS_ALLOWED_IPS"]):
        abort(404)
    data, content_type = metrics.render(get_queue())
    return Response(data, content_type=content_type)


def _guarded_lookup(find):
    """Run a pass lookup; count every refusal (no secret, wrong secret,
    unknown) per IP and refuse after too many."""
    throttle = current_app.extensions["throttle"]
    ip = request.remote_addr or "inconnue"
    return throttle.guard(find, (DomainError,), pass_check=ip)


def _check_form(status_code: int = 200, *, serial: str = "", code: str = "",
                error: DomainError | None = None, status=None):
    """The « Vérifier un pass » form, with what was typed and the error next
    to its field (page, or the form's fragment for htmx)."""
    errors = {}
    if error is not None:
        errors[error.field if error.field in ("serial", "verification_code") else "serial"] = \
            error.message
    return render("public/check.html", partial="public/_check_form.html", status_code=status_code,
                  serial=serial, code=code, errors=errors, status=status)


@bp.route("/P/<path:token>")
@bp.route("/p/<path:token>")
@public
def pass_page(token: str):
    """The page a pass's QR code opens in any phone camera app. Only the QR's
    MAC tag proves the pass: a bare serial gets the check form, asking for
    the printed verification code (issue 12)."""
    try:
        found = _guarded_lookup(lambda: passcheck.authenticate(db.session, code=token[:300]))
    except InvalidInput as error:
        if error.code != passcheck.CodeRequired.code:
            raise
        return _check_form(error.status, serial=token[:60], error=error)
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
        return _check_form()
    serial = request.form.get("serial", "")[:200]
    code = request.form.get("code", "")[:50]
    try:
        found = _guarded_lookup(lambda: passcheck.authenticate(
            db.session, serial=serial, verification_code=code))
    except (InvalidInput, NotFound) as error:
        return _check_form(error.status, serial=serial[:60], code=code[:20], error=error)
    status = passcheck.status_of(db.session, found, today())
    return _check_form(serial=serial[:60], code=code[:20], status=status)
