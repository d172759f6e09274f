"""Funds of the mandate (issue 17).

Sources: délibération CM2022/04/04/38 and its convention de mandat (#APTIC pays
the opérateurs "au nom et pour le compte" of the Métropole, with the Métropole's
money, within the advance ceiling of the mandate: ``Mandate.advance_ceiling_cents``);
CGCT L1611-7 IV (the mandataire renders accounts of every operation, with the
supporting records, at least once a year); public-accounting practice (every
operation by nature, without netting; position of the advance).

Rules here:
* a call for funds (appel de fonds) and the advances received never take the
  advances beyond the mandate's ceiling;
* funds available = advances received − transfers ordered (exported payment
  runs) + transfers returned by the bank; a payment run larger than the funds
  available (less the runs prepared and not yet exported) is refused with the
  figures (``portal.domain.sepa``);
* every movement of funds is a ledger entry of its own nature — AVANCE,
  VIREMENT, RETOUR_VIREMENT — with count 0 (no pass moves) and the amount in
  cents, chained in the ledger of the mandate's first programme (the funds are
  one pool for the whole mandate; the ledger chains per programme). The
  tables of ``portal.models.funds`` hold the supporting records.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.domain import ledger
from portal.domain.errors import Conflict, InvalidInput
from portal.domain.ledger import Actor
from portal.formatting import format_eur
from portal.models import (FundAdvance, FundCall, LineStatus, Mandate, PaymentLine, PaymentRun,
                           Programme, RunStatus, utcnow)
from portal.models.issuance import PassState
from portal.models.ledger import Nature

PACE_DAYS = 90          # the pace is the transfers of the last 90 days, like dashboards.py
MAX_AMOUNT_CENTS = 100_000_000_000


def funds_programme(session: Session, mandate: Mandate) -> Programme:
    """The programme whose ledger chain holds the mandate's fund entries: its first."""
    programme = session.execute(sa.select(Programme).where(
        Programme.commanditaire_id == mandate.mandant_id,
        Programme.issuer_id == mandate.mandataire_id).order_by(Programme.id).limit(1)).scalar()
    if programme is None:
        raise Conflict("Aucun programme n'est rattaché à ce mandat : ses fonds ne peuvent pas "
                       "encore être suivis dans le journal.")
    return programme


def append_entry(session: Session, mandate: Mandate, *, nature: Nature, amount_cents: int,
                 actor: Actor, ref_type: str, ref_id: int, reason: str,
                 to_holder_id: int | None, at: dt.datetime) -> None:
    """One movement of funds in the ledger (no pass: count 0)."""
    programme = funds_programme(session, mandate)
    ledger.append(session, programme_id=programme.id, nature=nature, actor=actor,
                         from_state=None, from_holder_id=None, to_state=PassState.PAYE,
                         to_holder_id=to_holder_id, pass_first_id=0, pass_last_id=0,
                         serial_first="", serial_last="", count=0, amount_cents=amount_cents,
                         ref_type=ref_type, ref_id=ref_id, reason=reason, created_at=at)


def lock(session: Session, mandate: Mandate) -> ledger.Head:
    """Serialise the movements of the mandate's funds (the chain head's row lock)."""
    return ledger.lock_head(session, funds_programme(session, mandate).id)


def _amount(amount_cents: int) -> int:
    if amount_cents is None or amount_cents <= 0 or amount_cents > MAX_AMOUNT_CENTS:
        raise InvalidInput("Le montant doit être positif.", field="amount")
    return amount_cents


def _reference(text: str) -> str:
    reference = (text or "").strip()
    if not reference:
        raise InvalidInput("Indiquez la référence.", field="reference")
    return reference[:80]


def advances_total(session: Session, mandate: Mandate) -> int:
    return int(session.execute(sa.select(sa.func.coalesce(sa.func.sum(
        FundAdvance.amount_cents), 0)).where(FundAdvance.mandate_id == mandate.id)).scalar_one())


def call_for_funds(session: Session, mandate: Mandate, *, reference: str, amount_cents: int,
                   called_on: dt.date, note: str, actor: Actor) -> FundCall:
    """Appel de fonds to the Métropole: never beyond the advance ceiling."""
    reference, amount_cents = _reference(reference), _amount(amount_cents)
    lock(session, mandate)
    room = mandate.advance_ceiling_cents - advances_total(session, mandate)
    if amount_cents > room:
        raise InvalidInput(
            f"Appel refusé : {format_eur(amount_cents)} demandés, mais le plafond d'avance du "
            f"mandat ({format_eur(mandate.advance_ceiling_cents)}) ne laisse que "
            f"{format_eur(max(room, 0))} après les avances déjà reçues.", field="amount")
    if session.execute(sa.select(FundCall.id).where(FundCall.mandate_id == mandate.id,
                                                   FundCall.reference == reference)).first():
        raise InvalidInput("Un appel de fonds porte déjà cette référence.", field="reference")
    call = FundCall(mandate_id=mandate.id, reference=reference, amount_cents=amount_cents,
                    called_on=called_on, note=(note or "").strip()[:500],
                    created_by_id=actor.user_id)
    session.add(call)
    session.flush()
    return call


def record_advance(session: Session, mandate: Mandate, *, reference: str, amount_cents: int,
                   received_on: dt.date, actor: Actor, fund_call: FundCall | None = None,
                   now: dt.datetime | None = None) -> FundAdvance:
    """Advance received from the Métropole (ledger nature AVANCE), within the ceiling."""
    reference, amount_cents = _reference(reference), _amount(amount_cents)
    lock(session, mandate)
    received = advances_total(session, mandate)
    if received + amount_cents > mandate.advance_ceiling_cents:
        raise InvalidInput(
            f"Avance refusée : {format_eur(received)} déjà reçus + {format_eur(amount_cents)} "
            f"dépasseraient le plafond d'avance du mandat "
            f"({format_eur(mandate.advance_ceiling_cents)}).", field="amount")
    if session.execute(sa.select(FundAdvance.id).where(FundAdvance.mandate_id == mandate.id,
                                                      FundAdvance.reference == reference)).first():
        raise InvalidInput("Une avance porte déjà cette référence bancaire.", field="reference")
    if fund_call is not None and fund_call.mandate_id != mandate.id:
        raise InvalidInput("Cet appel de fonds relève d'un autre mandat.", field="fund_call_id")
    at = now or utcnow()
    advance = FundAdvance(mandate_id=mandate.id, reference=reference, amount_cents=amount_cents,
                          received_on=received_on, created_by_id=actor.user_id, created_at=at,
                          fund_call_id=fund_call.id if fund_call else None)
    session.add(advance)
    session.flush()
    append_entry(session, mandate, nature=Nature.AVANCE, amount_cents=amount_cents, actor=actor,
                 ref_type="avance", ref_id=advance.id, to_holder_id=mandate.mandataire_id,
                 reason=f"avance {reference} reçue le {received_on:%d/%m/%Y}", at=at)
    return advance


@dataclass
class Position:
    ceiling_cents: int
    called_cents: int
    advances_cents: int
    payments_cents: int          # transfers of exported runs
    returns_cents: int           # of which returned by the bank
    prepared_cents: int          # runs prepared, not yet exported (reserved)
    pace_cents_per_day: float    # net transfers per day over the last PACE_DAYS
    runs_out_on: dt.date | None

    @property
    def available_cents(self) -> int:
        return self.advances_cents - self.payments_cents + self.returns_cents

    @property
    def free_cents(self) -> int:
        """What a new run may still use."""
        return self.available_cents - self.prepared_cents

    @property
    def ceiling_room_cents(self) -> int:
        return self.ceiling_cents - self.advances_cents


def _sum(session: Session, query) -> int:
    return int(session.execute(query).scalar() or 0)


def positions_of(session: Session, tenant, today: dt.date) -> list[tuple[Mandate, Position]]:
    """The funds position of every mandate of ``tenant`` (mandant or mandataire)."""
    mandates = session.execute(sa.select(Mandate).where(Mandate.tenant_clause(tenant))
                               .order_by(Mandate.id)).scalars()
    return [(m, position(session, m, today)) for m in mandates]


def position(session: Session, mandate: Mandate, today: dt.date) -> Position:
    """The funds position from the supporting records (the reddition's funds
    section reads the ledger and is reconciled with this)."""
    runs = sa.select(PaymentRun.id).where(PaymentRun.mandate_id == mandate.id)
    amount = sa.func.coalesce(sa.func.sum(PaymentLine.amount_cents), 0)
    exported = (sa.select(amount).join(PaymentRun, PaymentRun.id == PaymentLine.run_id)
                .where(PaymentRun.mandate_id == mandate.id,
                       PaymentRun.status == RunStatus.EXPORTEE))
    payments = _sum(session, exported)
    returns = _sum(session, sa.select(amount).where(PaymentLine.run_id.in_(runs),
                                                    PaymentLine.status == LineStatus.RETOURNE))
    prepared = _sum(session, sa.select(amount).join(PaymentRun, PaymentRun.id == PaymentLine.run_id)
                    .where(PaymentRun.mandate_id == mandate.id,
                           PaymentRun.status == RunStatus.PREPAREE))
    called = _sum(session, sa.select(sa.func.coalesce(sa.func.sum(FundCall.amount_cents), 0))
                  .where(FundCall.mandate_id == mandate.id))
    since = dt.datetime.combine(today - dt.timedelta(days=PACE_DAYS), dt.time(),
                                dt.timezone.utc)
    recent = _sum(session, exported.where(PaymentRun.exported_at >= since))
    recent_returns = _sum(session, sa.select(amount).where(
        PaymentLine.run_id.in_(runs), PaymentLine.status == LineStatus.RETOURNE,
        PaymentLine.returned_on >= since.date()))
    pace = max(recent - recent_returns, 0) / PACE_DAYS
    result = Position(mandate.advance_ceiling_cents, called, advances_total(session, mandate),
                      payments, returns, prepared, pace, None)
    if pace > 0:
        days = max(result.available_cents, 0) / pace
        result.runs_out_on = today + dt.timedelta(days=int(days))
    return result
