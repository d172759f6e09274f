"""Scan page of an opérateur (issue 6, point 2): phone-first, one input fed by
the camera, a USB scanner, manual entry or a photo; results swap in place."""
from __future__ import annotations

import datetime as dt
import io
import uuid

from flask import current_app, flash, request, url_for
from flask_login import current_user

from portal.domain import operateurs, scanning
from portal.domain.errors import DomainError, InvalidInput, NotFound
from portal.domain.permissions import Permission
from portal.extensions import db, htmx
from portal.models import Channel, OperateurService, Scan
from portal.observability import metrics
from portal.tenants.structure import bp
from portal.web import forms
from portal.web.gate import current_tenant
from portal.web.render import redirect_to, render
from portal.web.scoping import get_or_404

MAX_PHOTO_BYTES = 8 * 1024 * 1024

HEADLINES = {
    "deja_utilise": "Pass déjà utilisé",
    "expire": "Pass expiré",
    "bloque": "Pass bloqué",
    "non_remis": "Pass pas encore remis",
    "introuvable": "Pass inconnu",
    "saisie_invalide": "Code illisible ou pass falsifié",
    "code_requis": "Code de vérification requis",
    "hors_perimetre": "Pass non valable dans ce lieu",
    "operateur_non_qualifie": "Opérateur non qualifié",
    "meme_personne": "Même personne que le prescripteur",
    "trop_de_tentatives": "Trop de tentatives",
    "cle_reutilisee": "Scan déjà envoyé",
}


def _scanner() -> scanning.Scanner:
    return scanning.Scanner(current_tenant(), current_user.id)


def _input(channel_default: Channel = Channel.DOUCHETTE) -> scanning.ScanInput:
    service_id = forms.integer("service_id", "Service rendu", minimum=1, maximum=2**31 - 1,
                               required=False)
    channel = forms.choice("channel", "Canal", Channel, required=False) or channel_default
    occurred_at = None
    raw = request.form.get("occurred_at", "").strip()
    if raw:
        try:
            occurred_at = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput("Date du scan hors ligne illisible.", field="occurred_at") from None
        channel = Channel.HORS_LIGNE
    code = forms.text("code", "Code", required=False, max_length=300)
    serial = forms.text("serial", "Numéro", required=False, max_length=60)
    if channel is not Channel.HORS_LIGNE and serial.strip() and not code.strip():
        # Typed serial + verification code: the hidden "channel" field still
        # holds the page's default (douchette), which would miscount the channels.
        channel = Channel.SAISIE
    return scanning.ScanInput(code=code, serial=serial,
                              verification_code=forms.text("verification_code",
                                                           "Code de vérification",
                                                           required=False, max_length=20),
                              service_id=service_id, channel=channel, occurred_at=occurred_at)


def _page(result=None, status: int = 200):
    structure = current_tenant()
    services = operateurs.active_services(db.session, structure.id, current_user.id)
    recent = scanning.scans_of(db.session, structure.id, limit=10)
    # From a pass's page (/P/…) htmx swaps the result into that page; on the scan page the
    # recent scans are refreshed along with it (out-of-band swap).
    from_pass_page = request.form.get("channel") == Channel.PAGE_PASS.value
    return render("tenants/structure/scan.html", partial="tenants/structure/_scan_response.html",
                  status_code=status, result=result, services=services, recent=recent,
                  from_pass_page=from_pass_page,
                  new_key=uuid.uuid4().hex,
                  undo_minutes=current_app.config["SCAN_UNDO_MINUTES"])


def _ok(verdict: scanning.Verdict):
    scan = verdict.scan
    return {"ok": True, "headline": verdict.headline, "detail": verdict.detail,
            "serial": verdict.found.serial, "anomalies": verdict.anomalies,
            "scan_id": scan.id if scan is not None else None,
            "service": scan.service_name if scan is not None else "",
            "pass_count": _pass_count(scan)}


def _pass_count(scan) -> int | None:
    if scan is None or scan.service_id is None:
        return None
    service = db.session.get(OperateurService, scan.service_id)
    return service.price_pass if service is not None else None


def _ko(error: DomainError):
    return {"ok": False, "headline": HEADLINES.get(error.code, "Refusé"), "detail": error.message}


def _guarded(action):
    throttle = current_app.extensions["scan_throttle"]
    key = f"web:{current_tenant().id}:{current_user.id}"
    return throttle.guard(action, (NotFound, InvalidInput), scan_failures=key)


@bp.route("/scan", permission=Permission.SCAN_PASS)
def scan_page():
    return _page()


def _test(data: scanning.ScanInput):
    try:
        verdict = _guarded(lambda: scanning.test_pass(db.session, data, _scanner()))
    except DomainError as error:
        db.session.rollback()
        return _page(_ko(error), error.status)
    return _page(_ok(verdict))


def _consume(data: scanning.ScanInput):
    try:
        key = scanning.validate_key(request.form.get("idempotency_key") or uuid.uuid4().hex)
        outcome = _guarded(lambda: _raise_input_errors(
            scanning.consume_once(db.session, data, _scanner(), key)))
    except DomainError as error:
        db.session.rollback()
        return _page(_ko(error), error.status)
    if outcome.error is not None:
        return _page(_ko(outcome.error), outcome.status)
    if outcome.replay:
        result = {"ok": outcome.status < 300, "headline": outcome.body.get("message", ""),
                  "detail": outcome.body.get("detail", ""), "serial": outcome.body.get("serial", ""),
                  "replay": True}
        if not result["ok"]:
            result["headline"] = HEADLINES.get(outcome.body.get("code"), "Refusé")
            result["detail"] = outcome.body.get("message", "")
        return _page(result, outcome.status if outcome.status >= 400 else 200)
    return _page(_ok(outcome.verdict), 201 if htmx else 200)


def _raise_input_errors(outcome):
    metrics.count_scan(outcome)
    if outcome.error is not None and isinstance(outcome.error, (NotFound, InvalidInput)):
        raise outcome.error
    return outcome


@bp.route("/scan/tester", methods=["POST"], permission=Permission.SCAN_PASS)
def scan_test():
    return _test(_input())


@bp.route("/scan/valider", methods=["POST"], permission=Permission.SCAN_PASS)
def scan_consume():
    return _consume(_input())


def decode_photo(upload) -> str:
    """Decode a QR code from a photo with zxing-cpp (when the camera is not
    available, e.g. plain HTTP)."""
    if upload is None or not upload.filename:
        raise InvalidInput("Choisissez une photo du QR code.", field="photo")
    data = upload.read(MAX_PHOTO_BYTES + 1)
    if len(data) > MAX_PHOTO_BYTES:
        raise InvalidInput("Photo trop lourde (8 Mo au plus).", field="photo")
    from PIL import Image, UnidentifiedImageError
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > 40_000_000:
            raise InvalidInput("Photo trop grande.", field="photo")
        image = image.convert("L")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise InvalidInput("Ce fichier n'est pas une image lisible (JPEG ou PNG).",
                           field="photo") from None
    import zxingcpp
    results = zxingcpp.read_barcodes(image)
    for result in results:
        if result.text:
            return result.text[:300]
    raise InvalidInput("Aucun QR code lisible sur cette photo : reprenez-la de plus près, "
                       "bien éclairée, ou saisissez le numéro.", field="photo", reason="illisible")


@bp.route("/scan/photo", methods=["POST"], permission=Permission.SCAN_PASS)
def scan_photo():
    try:
        code = _guarded(lambda: decode_photo(request.files.get("photo")))
        base = _input(Channel.PHOTO)
    except DomainError as error:
        return _page(_ko(error), error.status)
    data = scanning.ScanInput(code=code, service_id=base.service_id, channel=Channel.PHOTO)
    if request.form.get("action") == "valider":
        return _consume(data)
    return _test(data)


@bp.route("/scans/<int:scan_id>/annuler", methods=["POST"], permission=Permission.SCAN_PASS)
def scan_undo(scan_id: int):
    scan = get_or_404(Scan, scan_id)
    reason = forms.text("reason", "Motif", max_length=500)
    scanning.undo(db.session, scan, _scanner(), reason=reason,
                  window_minutes=current_app.config["SCAN_UNDO_MINUTES"])
    db.session.commit()
    flash("Scan annulé : le pass est de nouveau utilisable.", "success")
    return redirect_to(url_for("structure.scan_page"))
