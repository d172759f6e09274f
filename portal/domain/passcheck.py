"""Which pass a person holds, and what anyone holding it may learn: whether
it is valid, until when and where it can be used. No personal data.

:func:`authenticate` is the one place where input becomes a pass: only the
pass's secret (QR MAC tag or printed verification code) proves it genuine;
the serial and its check digits are public (issue 12). Error messages
distinguish a probable typo (check digits wrong), a missing secret, a forged
or foreign code (MAC or code wrong, unknown key) and an unknown pass (its
secret verifies but it was never issued).
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


MSG_CODE_REQUIS = ("Le numéro seul ne prouve pas que ce pass est authentique : scannez son QR code "
                   "ou saisissez aussi le code de vérification imprimé sous le numéro.")
MSG_CODE_INCORRECT = ("Numéro ou code de vérification incorrect. Vérifiez la saisie ; si elle est "
                      "exacte, ce pass est peut-être falsifié.")

class CodeRequired(InvalidInput):
    """A serial without the pass's secret (issue 12)."""
    code = "code_requis"


_BY_SERIAL = (sa.select(Pass).options(sa.orm.joinedload(Pass.programme))
              .where(Pass.serial == sa.bindparam("serial")))


def genuine(found: Pass | None, key_id: str) -> Pass:
    """The pass read for an authenticated serial (its secret was verified
    under ``key_id``), or the refusal: never issued, or signed with another
    key than the one it was printed with."""
    if found is None:
        raise NotFound(UNKNOWN, reason="inconnu")
    if found.key_id != key_id:
        raise InvalidInput(serials.MSG_FALSIFIE, reason="falsifie")
    return found


def _lookup(session: Session, serial: serials.Serial, key_id: str) -> Pass:
    """The pass of an authenticated serial, with its programme loaded in the
    same query."""
    return genuine(session.execute(_BY_SERIAL, {"serial": serial.canonical}
                                   ).scalar_one_or_none(), key_id)


def _typed_key_id(serial: serials.Serial, code_text: str) -> str:
    """The key id under which ``code_text`` is the verification code of
    ``serial``; nothing is read from the database before the code is proven."""
    ring = keys.pass_ring()
    for kid in ring.key_ids:
        if serials.check_verification_code(ring, kid, serial, code_text):
            return kid
    raise InvalidInput(MSG_CODE_INCORRECT, field="verification_code", reason="falsifie")


def authenticate(session: Session, *, code: str = "", serial: str = "",
                 verification_code: str = "") -> Pass:
    """THE one function that turns what a person scanned or typed into a pass.

    A pass is genuine only when its secret is shown: the MAC tag of its QR
    code (``code``: the URL, the part after ``/P/`` or the bare token a USB
    scanner types) or the verification code printed under its serial
    (``serial`` + ``verification_code``, or a serial in ``code`` with the
    code beside it). Check digits (ISO 7064) are public: they only tell a
    typo, so a bare serial proves nothing and is refused with
    :data:`MSG_CODE_REQUIS` (reason ``code_requis``). The database is read
    only once the secret is verified, so a refusal says nothing about the
    pass — not even whether it exists — and callers count every refusal
    toward throttling. Raises ``InvalidInput`` (unreadable, typo, forged,
    code missing) or ``NotFound`` (authentic but never issued).
    """
    return _lookup(session, *prove(code=code, serial=serial,
                                   verification_code=verification_code))


def prove(*, code: str = "", serial: str = "", verification_code: str = ""
          ) -> tuple[serials.Serial, str]:
    """The serial that the input proves, and the key id its secret verified
    under — no database read. :func:`authenticate` then reads the pass; the
    scan reads it with its context in one statement and checks it with
    :func:`genuine`. Raises ``InvalidInput`` as :func:`authenticate` does."""
    code = (code or "")[:300]
    serial = (serial or "")[:200]
    verification_code = (verification_code or "")[:50]
    if code.strip():
        parsed = serials.parse_any(keys.pass_ring(), code)
        if isinstance(parsed, serials.ScannedPass):
            return parsed.serial, parsed.key_id
        if not verification_code.strip():
            raise CodeRequired(MSG_CODE_REQUIS, field="verification_code", reason="code_requis")
        typed = parsed
    elif serial.strip():
        typed = serials.parse_serial(serial)
        if not verification_code.strip():
            raise CodeRequired(MSG_CODE_REQUIS, field="verification_code", reason="code_requis")
    else:
        raise InvalidInput("Scannez le QR code ou saisissez le numéro du pass.", field="code",
                           reason="illisible")
    return typed, _typed_key_id(typed, verification_code)


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
