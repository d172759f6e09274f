"""End of validity of a programme's pass (issue 6, point 9).

Source: the issuer's timeline (#APTIC help centre, DOMAIN.md): validity
31/12/N, tolerance to 31/01/N+1 (``Programme.valid_until`` /
``tolerance_until``); J-30 alert on the dashboards; J-15 blocking process
validated by the commanditaire, distributors told to stop; J-7 the
commanditaire acknowledges that pass handed out meanwhile are at its cost;
after the tolerance pass are invalid; J+37 joint statement (état
contradictoire) and a credit note (avoir) at face value for unused pass.
Lost or stolen carnets: opposition (BLOCAGE). Every movement goes through
``portal.domain.custody`` and so into the ledger.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.domain import custody, serials
from portal.domain.errors import Conflict, InvalidInput
from portal.domain.ledger import Actor
from portal.domain.permissions import TenantKind
from portal.formatting import format_date
from portal.models import CreditNote, Pass, Programme, ProgrammePerimeter, Tenant, utcnow
from portal.models.issuance import PassState as S
from portal.models.ledger import Nature

ALERT_DAYS = 30        # J-30
BLOCKING_DAYS = 15     # J-15
ACKNOWLEDGE_DAYS = 7   # J-7
STATEMENT_DAYS = 37    # J+37

UNUSED_STATES = (S.ACTIVE, S.LIVRE, S.REPARTI, S.DISTRIBUE, S.BLOQUE, S.RESTITUE)


@dataclass(frozen=True)
class Alert:
    programme_id: int
    level: str          # "info" | "warning" | "error"
    message: str


def ensure_distribution_allowed(programme: Programme, today: dt.date) -> None:
    """Raise ``Conflict`` once the commanditaire validated the J-15 blocking
    (distributors told to stop) or after the validity date. Called by the
    distribution code before handing out any pass."""
    if programme.distribution_blocked_at is not None:
        raise Conflict(f"Distribution arrêtée : fin de validité des pass le "
                       f"{format_date(programme.valid_until)}, blocage validé par le "
                       "commanditaire. Ne remettez plus de pass de ce programme.")
    if today > programme.valid_until:
        raise Conflict(f"Les pass de ce programme ne sont plus valables depuis le "
                       f"{format_date(programme.valid_until)} : ils ne peuvent plus être remis.")


def is_expired(programme: Programme, day: dt.date) -> bool:
    """After validity + tolerance, scans are refused."""
    return day > programme.tolerance_until


def days_left(programme: Programme, today: dt.date) -> int:
    return (programme.valid_until - today).days


def alerts_for(session: Session, tenant: Tenant, today: dt.date) -> list[Alert]:
    """J-30 … J+37 alerts for the commanditaire's and the communes'
    dashboards (the communes of the programme's perimeter)."""
    if tenant.kind is TenantKind.METROPOLE:
        programmes = session.execute(sa.select(Programme).where(
            Programme.commanditaire_id == tenant.id)).scalars().all()
    elif tenant.kind is TenantKind.COMMUNE:
        programmes = session.execute(sa.select(Programme).join(ProgrammePerimeter).where(
            ProgrammePerimeter.tenant_id == tenant.id)).scalars().all()
    else:
        return []
    alerts = []
    commanditaire = tenant.kind is TenantKind.METROPOLE
    for p in programmes:
        left = days_left(p, today)
        until = format_date(p.valid_until)
        if left < -STATEMENT_DAYS - 60 or left > ALERT_DAYS:
            continue
        if left >= 0:
            text = f"{p.name} : fin de validité des pass le {until} (dans {left} jour(s))."
            level = "warning"
            if p.distribution_blocked_at:
                text += " Distribution arrêtée."
            elif left <= BLOCKING_DAYS:
                level = "error"
                text += (" Validez le blocage de la distribution." if commanditaire
                         else " Préparez l'arrêt de la distribution.")
            if commanditaire and left <= ACKNOWLEDGE_DAYS and not p.cost_acknowledged_at:
                text += " Prenez acte que les pass remis d'ici là sont à votre charge."
            alerts.append(Alert(p.id, level, text))
        elif today <= p.tolerance_until:
            alerts.append(Alert(p.id, "warning", f"{p.name} : pass acceptés jusqu'au "
                                f"{format_date(p.tolerance_until)} (tolérance)."))
        else:
            alerts.append(Alert(p.id, "info", f"{p.name} : pass expirés depuis le "
                                f"{format_date(p.tolerance_until)} ; état contradictoire et avoir "
                                f"à partir du {format_date(p.valid_until + dt.timedelta(days=STATEMENT_DAYS))}."))
    return alerts


def propose_blocking(session: Session, programme: Programme, *, actor: Actor, today: dt.date) -> None:
    """#APTIC proposes the J-15 blocking."""
    if days_left(programme, today) > BLOCKING_DAYS:
        raise Conflict(f"Le blocage se propose à partir de J-{BLOCKING_DAYS} (le "
                       f"{format_date(programme.valid_until - dt.timedelta(days=BLOCKING_DAYS))}).")
    if programme.blocking_proposed_at is None:
        programme.blocking_proposed_at = utcnow()
        programme.blocking_proposed_by_id = actor.user_id


def validate_blocking(session: Session, programme: Programme, *, actor: Actor, today: dt.date) -> None:
    """The commanditaire validates the blocking: no more distribution."""
    if programme.blocking_proposed_at is None:
        raise Conflict("#APTIC n'a pas encore proposé le blocage de la distribution.")
    if programme.distribution_blocked_at is None:
        programme.distribution_blocked_at = utcnow()
        programme.distribution_blocked_by_id = actor.user_id


def acknowledge_cost(session: Session, programme: Programme, *, actor: Actor, today: dt.date) -> None:
    """J-7: pass handed out meanwhile are at the commanditaire's cost."""
    if days_left(programme, today) > ACKNOWLEDGE_DAYS:
        raise Conflict(f"La prise d'acte se fait à partir de J-{ACKNOWLEDGE_DAYS}.")
    if programme.cost_acknowledged_at is None:
        programme.cost_acknowledged_at = utcnow()
        programme.cost_acknowledged_by_id = actor.user_id


def unused_counts(session: Session, programme: Programme) -> dict[str, int]:
    rows = session.execute(sa.select(Pass.state, sa.func.count()).where(
        Pass.programme_id == programme.id).group_by(Pass.state)).all()
    return {S(state).value: int(n) for state, n in rows}


def closing_statement(session: Session, programme: Programme, *, actor: Actor,
                      today: dt.date) -> CreditNote:
    """J+37: état contradictoire — every unused pass (not scanned, not in
    contre-paiement, not paid) moves to EXPIRE (nature EXPIRATION, in the
    ledger) and one credit note (avoir) at face value is recorded. Running
    it twice returns the first credit note."""
    existing = session.execute(sa.select(CreditNote).where(
        CreditNote.programme_id == programme.id)).scalar_one_or_none()
    if existing is not None:
        return existing
    start = programme.valid_until + dt.timedelta(days=STATEMENT_DAYS)
    if today < start:
        raise Conflict(f"L'état contradictoire se fait à partir du {format_date(start)} (J+37).")
    before = unused_counts(session, programme)
    moved = 0
    if any(before.get(s.value) for s in UNUSED_STATES):
        moved = custody.move(session, programme, nature=Nature.EXPIRATION,
                             criteria=[Pass.state.in_(UNUSED_STATES)], to_holder_id=None,
                             actor=actor, reason="Fin de validité : pass non utilisés (avoir)")
    note = CreditNote(programme_id=programme.id, pass_count=moved,
                      amount_cents=moved * programme.face_value_cents, counts=before,
                      created_by_id=actor.user_id)
    session.add(note)
    session.flush()
    return note


def oppose(session: Session, programme: Programme, first: str, last: str, *, reason: str,
           actor: Actor) -> int:
    """Opposition on lost or stolen pass, one serial or a range (BLOCAGE)."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Indiquez le motif de l'opposition (perte, vol…).", field="reason")
    a = serials.parse_serial(first)
    b = serials.parse_serial(last or first)
    if a.prefix != programme.prefix or b.prefix != programme.prefix:
        raise InvalidInput("Ces numéros n'appartiennent pas à ce programme.", field="first")
    lo, hi = sorted([a.canonical, b.canonical])
    count = session.execute(sa.select(sa.func.count()).where(
        Pass.programme_id == programme.id, Pass.serial.between(lo, hi))).scalar_one()
    if count == 0:
        raise Conflict("Aucun pass dans cette plage.")
    if count > 10_000:
        raise InvalidInput("Plage trop grande (10 000 pass au plus).", field="last")
    blockable = [s for s in custody.TRANSITIONS[Nature.BLOCAGE][0]]
    return custody.move(session, programme, nature=Nature.BLOCAGE,
                        criteria=[Pass.serial.between(lo, hi), Pass.state.in_(blockable)],
                        to_holder_id=None, actor=actor, reason=reason[:500])
