"""Public endpoints: health check (and, later, the pass page)."""
from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, jsonify

from portal.extensions import db
from portal.web.gate import public

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
