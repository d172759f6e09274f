"""What anyone may learn about a pass from its QR code or serial: whether it
is valid, until when and where it can be used. No personal data.

Error messages distinguish a probable typo (check digits wrong), a forged or
foreign code (MAC wrong, unknown key) and an unknown pass (well formed and
authentic-looking, but never issued).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.domain import keys, serials
from portal.domain.errors import InvalidInput, NotFound
from portal.formatting import format_date
from portal.models import Pass, Programme, ProgrammePerimeter, Tenant
from portal.models.issuance import PassState as S

UNKNOWN = ("Pass inconnu : ce numéro est bien formé mais aucun pass ne porte ce numéro. "
           "Vérifiez la saisie.")


@dataclass(frozen=True)
class PassStatus:
    serial: str
    valid: bool
    headline: str
    explanation: str
    valid_until: dt.date
    tolerance_until: dt.date
    programme_name: str
    places: list[str]
    state: S
    state_changed_at: dt.datetime


def _lookup(session: Session, serial: serials.Serial) -> Pass:
    found = session.execute(sa.select(Pass).where(Pass.serial == serial.canonical)
                            ).scalar_one_or_none()
    if found is None:
        raise NotFound(UNKNOWN, reason="inconnu")
    return found


def find_scanned(session: Session, text: str) -> Pass:
    """A pass from a QR payload (MAC verified) or from a serial + code typed
    as ``SERIAL`` alone (check digits verified only)."""
    parsed = serials.parse_any(keys.pass_ring(), text)
    serial = parsed.serial if isinstance(parsed, serials.ScannedPass) else parsed
    found = _lookup(session, serial)
    if isinstance(parsed, serials.ScannedPass) and parsed.key_id != found.key_id:
        raise InvalidInput(serials.MSG_FALSIFIE, reason="falsifie")
    return found


def find_typed(session: Session, serial_text: str, code_text: str) -> Pass:
    """A pass from a typed serial and its printed verification code."""
    serial = serials.parse_serial(serial_text)
    found = _lookup(session, serial)
    if not serials.check_verification_code(keys.pass_ring(), found.key_id, serial, code_text):
        raise InvalidInput("Code de vérification incorrect pour ce numéro de pass. Vérifiez la "
                           "saisie ; s'il est exact, ce pass est peut-être falsifié.",
                           reason="falsifie")
    return found


def places_of(session: Session, programme: Programme) -> list[str]:
    rows = session.execute(
        sa.select(Tenant.name).join(ProgrammePerimeter, ProgrammePerimeter.tenant_id == Tenant.id)
        .where(ProgrammePerimeter.programme_id == programme.id).order_by(Tenant.name)).scalars()
    return list(rows)


def status_of(session: Session, found: Pass, today: dt.date) -> PassStatus:
    programme = found.programme
    state = S(found.state)
    expired = today > programme.tolerance_until
    valid = state is S.DISTRIBUE and not expired
    until = format_date(programme.valid_until)
    if valid:
        headline, explanation = "Pass valable", (
            f"Ce pass peut être utilisé jusqu'au {until} auprès d'un lieu qualifié "
            "pour un service d'accompagnement numérique.")
    elif expired or state is S.EXPIRE:
        headline, explanation = "Pass expiré", f"Ce pass n'est plus utilisable depuis le {until}."
    elif state in (S.SCANNE, S.CONTRE_PAIEMENT, S.PAYE):
        headline, explanation = "Pass déjà utilisé", (
            f"Ce pass a été utilisé le {format_date(found.state_changed_at)}.")
    elif state is S.BLOQUE:
        headline, explanation = "Pass bloqué", "Ce pass a fait l'objet d'une opposition (perte ou vol)."
    elif state is S.ANNULE:
        headline, explanation = "Pass annulé", "Ce pass a été annulé par l'émetteur."
    elif state is S.EMIS:
        headline, explanation = "Pass non activé", "Ce pass n'est pas encore activé : il n'est valable nulle part."
    else:
        headline, explanation = "Pass pas encore remis", (
            "Ce pass n'a pas encore été remis à un bénéficiaire par un prescripteur.")
    return PassStatus(serial=found.serial, valid=valid, headline=headline,
                      explanation=explanation, valid_until=programme.valid_until,
                      tolerance_until=programme.tolerance_until, programme_name=programme.name,
                      places=places_of(session, programme), state=state,
                      state_changed_at=found.state_changed_at)
