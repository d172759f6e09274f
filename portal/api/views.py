"""Views of the JSON API. Each answer is JSON with a French ``message``."""
from __future__ import annotations

import datetime as dt
import re

import sqlalchemy as sa
from flask import current_app, g, jsonify, request

from portal.api import bp
from portal.api.openapi import document
from portal.domain import accounts, operateurs, scanning
from portal.domain.errors import DomainError, InvalidInput, NotFound
from portal.domain.permissions import Permission
from portal.extensions import db
from portal.observability import metrics
from portal.models import Channel, Membership, Scan
from portal.web.gate import current_tenant

_FIELDS = {"code", "serial", "verification_code", "service_id", "occurred_at", "agent"}
MAX_SERVICE_ID = 2**31 - 1          # services.id is an INTEGER (the schema says the same)
MAX_SCAN_ID = 2**63 - 1             # scans.id is a BIGINT on PostgreSQL
LIST_LIMIT = (1, 200)


def _int_arg(name: str, default: int | None, low: int, high: int) -> int | None:
    """An integer query parameter within [low, high]; anything else is a 422
    (never ignored, clamped or sent to the database to overflow there)."""
    values = request.args.getlist(name)
    if not values:
        return default
    text = values[-1].strip()
    if len(values) > 1 or not re.fullmatch(r"-?[0-9]{1,20}", text) \
            or not low <= int(text) <= high:
        raise InvalidInput(f"Paramètre « {name} » invalide : un entier de {low} à {high} est "
                           "attendu.", field=name)
    return int(text)


def _scanner(data: dict | None = None) -> scanning.Scanner:
    """The structure of the token, and the agent the request names (its
    e-mail in ``agent``): a member of this structure allowed to scan. Without
    an agent nobody is accountable but the token (art. 8 is then checked
    against the structure that handed the pass out)."""
    token_id = g.api_token_id
    structure = current_tenant()
    email = _text(data or {}, "agent").strip()
    if not email:
        return scanning.Scanner(structure, None, token_id)
    user = accounts.find_user(db.session, email)
    membership = db.session.execute(sa.select(Membership).where(
        Membership.user_id == user.id, Membership.tenant_id == structure.id)
    ).scalar_one_or_none() if user is not None and user.is_active else None
    if membership is None or Permission.SCAN_PASS not in membership.permissions:
        raise InvalidInput(f"Agent inconnu pour ce lieu : « {email[:100]} » n'est pas un agent "
                           "opérateur de cette structure.", field="agent")
    return scanning.Scanner(structure, user.id, token_id)


def _payload() -> dict:
    if request.content_length and request.content_length > 10_000:
        raise InvalidInput("Corps de requête trop volumineux.")
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise InvalidInput("Corps JSON attendu : un objet, par exemple "
                           '{"code": "<contenu du QR code>", "service_id": 1}.')
    unknown = set(data) - _FIELDS
    if unknown:
        raise InvalidInput(f"Champ inconnu : {', '.join(sorted(unknown))}.")
    return data


def _text(data: dict, name: str) -> str:
    value = data.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 300:
        raise InvalidInput(f"Le champ « {name} » doit être un texte de 300 caractères au plus.",
                           field=name)
    if "\x00" in value:
        raise InvalidInput(f"Caractère interdit (NUL) dans le champ « {name} ».", field=name)
    return value


def scan_input(data: dict, channel: Channel) -> scanning.ScanInput:
    service_id = data.get("service_id")
    if service_id is not None and (isinstance(service_id, bool) or not isinstance(service_id, int)
                                   or not 1 <= service_id <= MAX_SERVICE_ID):
        raise InvalidInput(f"« service_id » doit être un entier de 1 à {MAX_SERVICE_ID}.",
                           field="service_id")
    occurred_at = None
    if data.get("occurred_at"):
        try:
            occurred_at = dt.datetime.fromisoformat(_text(data, "occurred_at"))
        except ValueError:
            raise InvalidInput("« occurred_at » doit être une date ISO 8601 avec fuseau, par "
                               "exemple 2026-11-23T10:15:00+01:00.", field="occurred_at") from None
        channel = Channel.HORS_LIGNE
    return scanning.ScanInput(code=_text(data, "code"), serial=_text(data, "serial"),
                              verification_code=_text(data, "verification_code"),
                              service_id=service_id, channel=channel, occurred_at=occurred_at)


def _throttled(action):
    """Count unknown/unreadable/forged codes per token; 429 beyond the limit."""
    throttle = current_app.extensions["scan_throttle"]
    key = f"api:{g.api_token_id}"
    return throttle.guard(action, (NotFound, InvalidInput), scan_failures=key)


@bp.route("/openapi.json", permission=None)
def openapi():
    return jsonify(document())


@bp.route("/pass/test", methods=["POST"], permission=Permission.SCAN_PASS)
def test_pass():
    payload = _payload()
    data = scan_input(payload, Channel.API)
    verdict = _throttled(lambda: scanning.test_pass(db.session, data, _scanner(payload)))
    body = verdict.as_json()
    body["valid"] = True
    return jsonify(body)


@bp.route("/scans", methods=["POST"], permission=Permission.SCAN_PASS)
def consume():
    key = scanning.validate_key(request.headers.get("Idempotency-Key"))
    payload = _payload()
    data = scan_input(payload, Channel.API)

    def run():
        outcome = scanning.consume_once(db.session, data, _scanner(payload), key)
        metrics.count_scan(outcome)
        if outcome.error is not None and isinstance(outcome.error, (NotFound, InvalidInput)):
            raise outcome.error
        return outcome
    try:
        outcome = _throttled(run)
    except DomainError as error:
        if isinstance(error, scanning.KeyReused):
            raise
        return jsonify({"message": error.message, "code": error.code}), error.status
    response = jsonify(outcome.body)
    response.status_code = outcome.status
    if outcome.replay:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@bp.route("/services", methods=["GET"], permission=Permission.SCAN_PASS)
def list_services():
    services = operateurs.active_services(db.session, current_tenant().id)
    return jsonify({"message": f"{len(services)} service(s).", "services": [
        {"id": s.id, "name": s.name, "price_pass": s.price_pass,
         "duration_minutes": s.duration_minutes} for s in services]})


@bp.route("/scans", methods=["GET"], permission=Permission.SCAN_PASS)
def list_scans():
    unknown = set(request.args) - {"avant", "limite"}
    if unknown:
        raise InvalidInput(f"Paramètre inconnu : {', '.join(sorted(unknown))[:200]}.")
    before = _int_arg("avant", None, 1, MAX_SCAN_ID)
    limit = _int_arg("limite", 50, *LIST_LIMIT)
    scans = scanning.scans_of(db.session, current_tenant().id, limit=limit, before_id=before)
    return jsonify({"message": f"{len(scans)} scan(s).",
                    "scans": [scanning.scan_json(s) for s in scans]})


def _scan_or_404(scan_id: int) -> Scan:
    scan = db.session.get(Scan, scan_id) if 0 < scan_id < 2**62 else None
    if scan is None or scan.structure_id != current_tenant().id:
        raise NotFound("Scan introuvable.")
    return scan


@bp.route("/scans/<int:scan_id>", methods=["GET"], permission=Permission.SCAN_PASS)
def get_scan(scan_id: int):
    scan = _scan_or_404(scan_id)
    return jsonify({"message": "Scan trouvé.", "scan": scanning.scan_json(scan)})


@bp.route("/scans/<int:scan_id>/annulation", methods=["POST"], permission=Permission.SCAN_PASS)
def undo_scan(scan_id: int):
    data = request.get_json(silent=True)
    if not isinstance(data, dict) or not isinstance(data.get("reason", ""), str):
        raise InvalidInput('Corps JSON attendu : {"reason": "motif de l\'annulation"}.')
    scan = _scan_or_404(scan_id)
    scanning.undo(db.session, scan, _scanner(), reason=data.get("reason", "")[:500],
                  window_minutes=current_app.config.get("SCAN_UNDO_MINUTES", 30))
    db.session.commit()
    return jsonify({"message": "Scan annulé : le pass est de nouveau utilisable.",
                    "scan": scanning.scan_json(scan)})
