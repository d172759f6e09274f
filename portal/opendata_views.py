"""Public open-data endpoints (anonymised aggregates, portal.domain.opendata)."""
from __future__ import annotations

from flask import Blueprint, Response

from portal.domain import opendata
from portal.extensions import db
from portal.web.downloads import CSV, attachment
from portal.web.gate import public

bp = Blueprint("opendata", __name__)


@bp.route("/donnees-ouvertes/consommation.<any(csv, json):fmt>")
@public
def consumption(fmt: str):
    data = opendata.rows(db.session)
    if fmt == "csv":
        return attachment(opendata.to_csv(data), "pass-numerique-consommation.csv", CSV)
    return Response(opendata.to_json(data), mimetype="application/json")
