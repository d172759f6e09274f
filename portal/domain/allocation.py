"""Allocation of pass to communes: the MGP–commune convention (seed 000).

Every rule of the convention that moves pass between the Métropole and a
commune lives here, with its article:

* art. 2, 12 — the convention ends on ``programme.convention_ends_on`` unless an
  avenant extends it (``record_avenant``);
* art. 3, 4 — **amorçage** of ``programme.amorcage_size`` pass, requestable from
  ``request_window_start`` when the four conditions hold (``amorcage_conditions``),
  refused from ``request_window_end`` or when the stock does not suffice;
* art. 4, 5 — delivery due ``delivery_working_days`` jours ouvrés after MGP's
  confirmation (``portal.domain.calendar``);
* art. 5 — **abondement** of ``abondement_size`` pass each time
  ``abondement_threshold_pct`` % of the pass the commune holds are consumed,
  "un Pass consommé est un Pass scanné et mis en contre-paiement"
  (``consumption``, ``abondement_candidates``);
* art. 6 — one stock shared by all communes; no tranche beyond it (``stock``);
* art. 7 — the référent confirms receptions and splits carnets among the
  prescripteur structures (``confirm_reception``, ``split_carnets``,
  ``take_back_carnets``); a change of référent is reported at once;
* art. 11 — sanctions: restitution of pass not yet distributed, suspension or
  reduction of abondements, always with a reason (``order_sanction``).

Nothing here imports Flask; numbers and dates are programme settings.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.domain import calendar, clock, custody, ledger
from portal.domain.errors import Conflict, InvalidInput, NotAllowed
from portal.domain.ledger import Actor
from portal.domain.permissions import TenantKind
from portal.formatting import format_count
from portal.models import (Carnet, Convention, ConventionEvent, HubOpinion, OpinionKind, Pass,
                           Programme, Sanction, SanctionKind, Shipment, Tenant, Tranche,
                           TrancheKind, TrancheStatus)
from portal.models.issuance import PassState as S
from portal.models.ledger import Nature

CONSUMED_STATES = (S.CONTRE_PAIEMENT, S.PAYE)   # art. 5: scanned AND mis en contre-paiement
COMMITTED = (TrancheStatus.CONFIRMEE, TrancheStatus.EXPEDIEE, TrancheStatus.RECUE)
PENDING = (TrancheStatus.DEMANDEE, TrancheStatus.CONFIRMEE, TrancheStatus.EXPEDIEE)


def _fr(day: dt.date) -> str:
    return day.strftime("%d/%m/%Y")


# ---------------------------------------------------------------- convention (art. 2, 3, 7, 12)

def create_convention(session: Session, programme: Programme, commune: Tenant, *,
                      reference: str = "") -> Convention:
    if commune.kind is not TenantKind.COMMUNE or commune.parent_id != programme.commanditaire_id:
        raise InvalidInput("Cette commune ne relève pas du commanditaire du programme.")
    exists = session.execute(sa.select(Convention.id).where(
        Convention.programme_id == programme.id, Convention.commune_id == commune.id)).first()
    if exists:
        raise Conflict(f"Une convention existe déjà avec {commune.name} pour ce programme.")
    convention = Convention(programme_id=programme.id, commune_id=commune.id,
                            reference=reference.strip()[:80],
                            delivery_address=commune.full_address,
                            ends_on=programme.convention_ends_on)
    session.add(convention)
    session.flush()
    return convention


def _not_after_today(day: dt.date, field: str, what: str) -> None:
    """Evidence records something that happened: a date after today (Paris,
    the portal's one clock) cannot count toward the conditions of art. 4."""
    if day is not None and day > clock.today():
        raise InvalidInput(f"{what} ne peut pas être dans le futur (après le "
                           f"{_fr(clock.today())}).", field=field)


def _event(session: Session, convention: Convention, kind: str, summary: str,
           actor: Actor, effective_on: dt.date | None) -> ConventionEvent:
    event = ConventionEvent(convention_id=convention.id, kind=kind, summary=summary[:1000],
                            effective_on=effective_on, actor_user_id=actor.user_id)
    session.add(event)
    session.flush()
    return event


def record_signature(session: Session, convention: Convention, party: str, on: dt.date,
                     signatory: str, *, actor: Actor) -> None:
    """Signature of the convention by one party (art. 4: signed by both parties)."""
    signatory = (signatory or "").strip()
    if not signatory:
        raise InvalidInput("Indiquez le nom du signataire.", field="signatory")
    _not_after_today(on, "signed_on", "La date de signature")
    if party == "commune":
        convention.signed_by_commune_on, convention.signed_by_commune_name = on, signatory[:200]
    elif party == "metropole":
        convention.signed_by_metropole_on, convention.signed_by_metropole_name = on, signatory[:200]
    else:
        raise InvalidInput("Partie signataire inconnue.", field="party")
    label = "la commune" if party == "commune" else "la Métropole"
    _event(session, convention, "signature", f"Signature par {label} ({signatory}).", actor, on)


def set_referent(session: Session, convention: Convention, *, name: str, email: str,
                 phone: str, on: dt.date, actor: Actor) -> ConventionEvent:
    """Designate or change the référent de projet (art. 7: MGP is told at once —
    the caller sends the notification using the returned event)."""
    name, email, phone = (name or "").strip(), (email or "").strip().lower(), (phone or "").strip()
    if not name:
        raise InvalidInput("Le nom du référent est obligatoire.", field="referent_name")
    if "@" not in email or len(email) > 254 or " " in email:
        raise InvalidInput("Adresse électronique du référent invalide.", field="referent_email")
    if len([c for c in phone if c.isdigit()]) < 10 or len(phone) > 30:
        raise InvalidInput("Téléphone du référent invalide (10 chiffres au moins).",
                           field="referent_phone")
    _not_after_today(on, "designated_on", "La date de désignation")
    previous = convention.referent_name
    convention.referent_name, convention.referent_email = name[:200], email
    convention.referent_phone, convention.referent_designated_on = phone, on
    summary = (f"Changement de référent : {previous} remplacé(e) par {name} ({email}, {phone})."
               if previous else f"Référent désigné : {name} ({email}, {phone}).")
    return _event(session, convention, "referent", summary, actor, on)


def record_avenant(session: Session, convention: Convention, *, signed_on: dt.date,
                   summary: str, new_end: dt.date | None, actor: Actor) -> ConventionEvent:
    """An avenant (art. 12), possibly extending the convention (art. 2)."""
    summary = (summary or "").strip()
    if not summary:
        raise InvalidInput("Décrivez ce que l'avenant modifie.", field="summary")
    _not_after_today(signed_on, "signed_on", "La date de signature de l'avenant")
    if new_end is not None:
        if new_end <= convention.ends_on:
            raise InvalidInput("La nouvelle échéance doit suivre l'échéance actuelle "
                               f"({_fr(convention.ends_on)}).", field="new_end")
        summary += f" Échéance portée du {_fr(convention.ends_on)} au {_fr(new_end)}."
        convention.ends_on = new_end
    return _event(session, convention, "avenant", f"Avenant signé le {_fr(signed_on)} : {summary}",
                  actor, signed_on)


def record_opinion(session: Session, convention: Convention, *, hub: Tenant, kind: OpinionKind,
                   favourable: bool, given_on: dt.date, evidence: str,
                   actor: Actor) -> HubOpinion:
    """One of the Hub's two opinions (art. 4); the last one of each kind counts."""
    if hub.kind is not TenantKind.HUB:
        raise NotAllowed("Seul le Hub territorial émet ces avis.")
    evidence = (evidence or "").strip()
    if not evidence:
        raise InvalidInput("Précisez le justificatif (courriel envoyé, formations suivies…).",
                           field="evidence")
    _not_after_today(given_on, "given_on", "La date de l'avis")
    opinion = HubOpinion(convention_id=convention.id, hub_id=hub.id, kind=OpinionKind(kind),
                         favourable=favourable, given_on=given_on, evidence=evidence[:1000],
                         given_by_id=actor.user_id)
    session.add(opinion)
    session.flush()
    return opinion


def latest_opinions(session: Session, convention: Convention) -> dict[OpinionKind, HubOpinion]:
    rows = session.execute(sa.select(HubOpinion).where(HubOpinion.convention_id == convention.id)
                           .order_by(HubOpinion.given_on, HubOpinion.id)).scalars()
    return {o.kind: o for o in rows}


# ---------------------------------------------------------------- amorçage (art. 3, 4)

@dataclass(frozen=True)
class Condition:
    key: str
    label: str
    met: bool
    detail: str


def amorcage_conditions(session: Session, convention: Convention) -> list[Condition]:
    """The four conditions of art. 4, each with who, when and the evidence."""
    c = convention
    signed = c.signed_by_commune_on is not None and c.signed_by_metropole_on is not None
    if c.signed_by_commune_on is not None and c.signed_by_metropole_on is not None:
        sign_detail = (f"Signée par la commune le {_fr(c.signed_by_commune_on)} "
                       f"({c.signed_by_commune_name}) et par la Métropole le "
                       f"{_fr(c.signed_by_metropole_on)} ({c.signed_by_metropole_name}).")
    else:
        missing = [p for p, d in (("la commune", c.signed_by_commune_on),
                                  ("la Métropole", c.signed_by_metropole_on)) if d is None]
        sign_detail = "Signature attendue de " + " et de ".join(missing) + "."
    conditions = [
        Condition("signature", "Convention signée par les deux parties", signed, sign_detail),
        Condition("referent", "Référent de projet désigné et contacts transmis à la Métropole",
                  bool(c.referent_name and c.referent_email and c.referent_phone),
                  f"{c.referent_name} ({c.referent_email}, {c.referent_phone}), désigné le "
                  f"{_fr(c.referent_designated_on)}." if c.referent_name and
                  c.referent_designated_on else "Aucun référent désigné."),
    ]
    opinions = latest_opinions(session, convention)
    for kind, label in ((OpinionKind.RESEAU, "Avis favorable du Hub sur le réseau de "
                                             "prescripteurs et d'opérateurs"),
                        (OpinionKind.CAPACITE, "Avis favorable du Hub sur la capacité des "
                                               "acteurs (formations)")):
        opinion = opinions.get(kind)
        if opinion is None:
            detail = "Avis non encore émis par le Hub."
        else:
            who = opinion.given_by.full_name if opinion.given_by else "le Hub"
            verdict = "favorable" if opinion.favourable else "défavorable"
            detail = f"Avis {verdict} du {_fr(opinion.given_on)} ({who}) : {opinion.evidence}"
        conditions.append(Condition(kind.value, label,
                                    opinion is not None and opinion.favourable, detail))
    return conditions


@dataclass(frozen=True)
class Stock:
    """The commitments against the shared stock (art. 6): the Métropole « prévoit
    l'acquisition » of ``planned`` pass for all communes; MGP confirms tranches
    against it before or after the pass are ordered, and restitutions (art. 11)
    make room again: planned + restituted = committed + available.

    These are commitments, not pass: the pass that exist and where they are
    are the terms of ``dashboards.pass_stock`` (émis = Σ pass per state)."""
    planned: int        # programme.total_stock (art. 6)
    committed: int      # confirmed tranches (shipped or not)
    restituted: int     # given back under art. 11
    available: int      # still to commit in tranches (« restant à engager »)


def stock(session: Session, programme: Programme) -> Stock:
    """The shared stock (art. 6): planned − confirmed tranches + restitutions."""
    committed = session.execute(
        sa.select(sa.func.coalesce(sa.func.sum(Tranche.quantity), 0))
        .join(Convention, Convention.id == Tranche.convention_id)
        .where(Convention.programme_id == programme.id, Tranche.status.in_(COMMITTED))).scalar_one()
    restituted = session.execute(
        sa.select(sa.func.coalesce(sa.func.sum(Sanction.quantity), 0))
        .join(Convention, Convention.id == Sanction.convention_id)
        .where(Convention.programme_id == programme.id,
               Sanction.kind == SanctionKind.RESTITUTION)).scalar_one()
    # COALESCE(…, 0): never NULL.
    committed, restituted = int(committed or 0), int(restituted or 0)
    return Stock(planned=programme.total_stock, committed=committed, restituted=restituted,
                 available=programme.total_stock - committed + restituted)


def _window_open(programme: Programme, today: dt.date, what: str) -> None:
    if today < programme.request_window_start:
        raise Conflict(f"{what} ne peut être demandé qu'à partir du "
                       f"{_fr(programme.request_window_start)} (convention, art. 4).")
    if today >= programme.request_window_end:
        raise Conflict(f"{what} ne peut plus être demandé à compter du "
                       f"{_fr(programme.request_window_end)} (convention, art. 4 et 5).")


def _tranches(session: Session, convention: Convention) -> list[Tranche]:
    return list(session.execute(sa.select(Tranche).where(Tranche.convention_id == convention.id)
                                .order_by(Tranche.id)).scalars())


def _check_amorcage_request(session: Session, convention: Convention, today: dt.date) -> None:
    """What request_amorcage checks before writing (art. 4 and 6)."""
    programme = convention.programme
    _window_open(programme, today, "L'amorçage")
    if any(t.kind is TrancheKind.AMORCAGE and t.status is not TrancheStatus.REFUSEE
           for t in _tranches(session, convention)):
        raise Conflict("L'amorçage a déjà été demandé pour cette convention.")
    missing = [c.label for c in amorcage_conditions(session, convention) if not c.met]
    if missing:
        raise Conflict("L'amorçage ne peut pas encore être demandé : " + " ; ".join(missing)
                       + " (convention, art. 4).")
    if stock(session, programme).available < programme.amorcage_size:
        raise Conflict("Le stock de pass de la Métropole est épuisé : l'amorçage ne peut plus "
                       "être demandé (convention, art. 4 et 6).")


def amorcage_refusal(session: Session, convention: Convention, today: dt.date) -> str | None:
    """Why the amorçage cannot be requested today, or None when it can: the convention page
    shows this state instead of a button that would fail (same checks as request_amorcage)."""
    try:
        _check_amorcage_request(session, convention, today)
    except Conflict as refused:
        return refused.message
    return None


AMORCAGE_STEPS = ("demandé", "confirmé", "expédié", "reçu", "réparti")


def amorcage_progress(session: Session, convention: Convention) -> int:
    """How far the amorçage went (art. 4 and 7): -1 not requested, else the index in
    AMORCAGE_STEPS of the last step done (« réparti » once the commune split all it holds)."""
    tranche = next((t for t in _tranches(session, convention)
                    if t.kind is TrancheKind.AMORCAGE and t.status is not TrancheStatus.REFUSEE),
                   None)
    if tranche is None:
        return -1
    done = {TrancheStatus.DEMANDEE: 0, TrancheStatus.CONFIRMEE: 1, TrancheStatus.EXPEDIEE: 2,
            TrancheStatus.RECUE: 3}[tranche.status]
    if done == 3 and commune_stock(session, convention.programme, convention.commune) == 0:
        done = 4
    return done


def request_amorcage(session: Session, convention: Convention, *, actor: Actor,
                     today: dt.date) -> Tranche:
    """The référent requests the amorçage (art. 4)."""
    programme = convention.programme
    _check_amorcage_request(session, convention, today)
    tranche = Tranche(convention_id=convention.id, kind=TrancheKind.AMORCAGE,
                      status=TrancheStatus.DEMANDEE, quantity=programme.amorcage_size,
                      requested_on=today, requested_by_id=actor.user_id)
    session.add(tranche)
    session.flush()
    return tranche


def _due_on(programme: Programme, confirmed_on: dt.date) -> dt.date:
    return calendar.add_working_days(confirmed_on, programme.delivery_working_days,
                                     programme.holiday_subdivision, programme.pentecost_worked)


def confirm_amorcage(session: Session, tranche: Tranche, *, actor: Actor,
                     today: dt.date) -> Tranche:
    """MGP confirms a requested amorçage; the delivery clock starts (art. 4).

    Art. 4 bounds when the amorçage may be *requested* (« ne pourra plus être
    demandé à compter du 01/10/2021 »), not when MGP confirms it: a request
    made in time (30/09/2021) is confirmed even on 01/10/2021 or later, and
    delivered within 20 jours ouvrés of that confirmation; it never stays
    « demandée » because the window closed meanwhile. The shared stock
    (art. 6) is still checked at confirmation."""
    programme = tranche.convention.programme
    ledger.lock_head(session, programme.id)   # one confirmation at a time per programme
    session.refresh(tranche)
    if tranche.status is not TrancheStatus.DEMANDEE:
        raise Conflict(f"Cette tranche est déjà {tranche.status.label}.")
    _window_open(programme, tranche.requested_on or today, "L'amorçage")
    if stock(session, programme).available < tranche.quantity:
        raise Conflict("Stock insuffisant : confirmer cette tranche dépasserait le stock de "
                       "la Métropole (convention, art. 6).")
    tranche.status, tranche.confirmed_on, tranche.confirmed_by_id = (
        TrancheStatus.CONFIRMEE, today, actor.user_id)
    tranche.due_on = _due_on(programme, today)
    session.flush()
    return tranche


def refuse_tranche(session: Session, tranche: Tranche, reason: str, *, actor: Actor,
                   today: dt.date) -> Tranche:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Indiquez le motif du refus.", field="reason")
    if tranche.status is not TrancheStatus.DEMANDEE:
        raise Conflict(f"Cette tranche est déjà {tranche.status.label}.")
    tranche.status, tranche.refusal_reason = TrancheStatus.REFUSEE, reason[:1000]
    tranche.confirmed_on, tranche.confirmed_by_id = today, actor.user_id
    session.flush()
    return tranche


# ---------------------------------------------------------------- abondement (art. 5, 6)

@dataclass(frozen=True)
class Consumption:
    held: int        # pass received (amorçage + abondements − restitutions)
    consumed: int    # scanned AND mis en contre-paiement

    def ratio_pct(self) -> float:
        return 100.0 * self.consumed / self.held if self.held else 0.0

    def reaches(self, threshold_pct: int) -> bool:
        return self.held > 0 and self.consumed * 100 >= threshold_pct * self.held

    def to_threshold(self, threshold_pct: int) -> int:
        """Consumed pass still needed to reach the threshold."""
        needed = -(-threshold_pct * self.held // 100)
        return max(0, needed - self.consumed)


def consumption(session: Session, programme: Programme) -> dict[int, Consumption]:
    """Per commune id, from the pass themselves (no count typed by hand)."""
    rows = session.execute(
        sa.select(Pass.commune_id, sa.func.count(),
                  sa.func.sum(sa.case((Pass.state.in_(CONSUMED_STATES), 1), else_=0)))
        .where(Pass.programme_id == programme.id, Pass.commune_id.is_not(None))
        .group_by(Pass.commune_id))
    return {commune: Consumption(int(held), int(consumed or 0)) for commune, held, consumed in rows}


@dataclass(frozen=True)
class Candidate:
    convention: Convention
    consumption: Consumption
    eligible: bool
    reason: str
    quantity: int


def _abondement_size(programme: Programme, convention: Convention) -> int:
    if convention.abondement_size_override is not None:
        return convention.abondement_size_override
    return programme.abondement_size


def _tranche_quantity(programme: Programme, convention: Convention, available: int) -> tuple[int, str]:
    size = _abondement_size(programme, convention)
    if size <= 0:
        return 0, "Abondements supprimés par décision de la Métropole (art. 11)."
    if available <= 0:
        return 0, "Stock de la Métropole épuisé (art. 6)."
    if available >= size:
        return size, ""
    if not programme.partial_last_tranche:
        return 0, "Stock restant insuffisant pour une tranche complète (art. 6)."
    whole = available // programme.pass_per_carnet * programme.pass_per_carnet
    if whole <= 0:
        return 0, "Stock restant inférieur à un carnet (art. 6)."
    return whole, f"Dernière tranche partielle : {whole} pass (stock restant)."


def abondement_candidates(session: Session, programme: Programme, today: dt.date
                          ) -> list[Candidate]:
    """MGP's monthly review (art. 5): every convention with its figures, and
    whether an abondement can be confirmed now."""
    conventions = session.execute(
        sa.select(Convention).join(Tenant, Tenant.id == Convention.commune_id)
        .where(Convention.programme_id == programme.id).order_by(Tenant.name)).scalars().all()
    figures = consumption(session, programme)
    available = stock(session, programme).available
    pending = set(session.execute(
        sa.select(Tranche.convention_id).join(Convention)
        .where(Convention.programme_id == programme.id, Tranche.status.in_(PENDING))).scalars())
    result = []
    for convention in conventions:
        c = figures.get(convention.commune_id, Consumption(0, 0))
        quantity, note = _tranche_quantity(programme, convention, available)
        reason = ""
        if today >= programme.request_window_end:
            reason = f"Plus d'abondement à compter du {_fr(programme.request_window_end)} (art. 5)."
        elif c.held == 0:
            reason = "Aucun pass reçu."
        elif convention.abondements_suspended:
            reason = "Abondements suspendus par la Métropole (art. 11)."
        elif convention.id in pending:
            reason = "Une tranche est déjà en cours pour cette commune."
        elif not c.reaches(programme.abondement_threshold_pct):
            missing = c.to_threshold(programme.abondement_threshold_pct)
            reason = (f"{format_count(missing)} "
                      f"{'pass consommé manque' if missing <= 1 else 'pass consommés manquent'} "
                      f"pour atteindre {programme.abondement_threshold_pct} %.")
        elif quantity == 0:
            reason = note
        result.append(Candidate(convention, c, eligible=not reason, reason=reason or note,
                                quantity=quantity if not reason else 0))
    return result


def confirm_abondement(session: Session, convention: Convention, *, actor: Actor,
                       today: dt.date) -> Tranche:
    """MGP confirms an abondement for a candidate commune (art. 5)."""
    programme = convention.programme
    ledger.lock_head(session, programme.id)   # concurrent confirmations cannot overdraw
    candidate = next((c for c in abondement_candidates(session, programme, today)
                      if c.convention.id == convention.id), None)
    if candidate is None or not candidate.eligible:
        raise Conflict("Abondement impossible : " + (candidate.reason if candidate else
                                                      "convention inconnue."))
    tranche = Tranche(convention_id=convention.id, kind=TrancheKind.ABONDEMENT,
                      status=TrancheStatus.CONFIRMEE, quantity=candidate.quantity,
                      confirmed_on=today, confirmed_by_id=actor.user_id,
                      due_on=_due_on(programme, today))
    session.add(tranche)
    session.flush()
    return tranche


# ---------------------------------------------------------------- delivery and reception

def _carnet_ids(session: Session, programme: Programme, ranges) -> list[int]:
    clauses = [Carnet.number.between(first, last) for first, last in ranges]
    return list(session.execute(sa.select(Carnet.id).where(
        Carnet.programme_id == programme.id, sa.or_(*clauses))).scalars())


def reserved_carnets(session: Session, programme: Programme) -> list[tuple[int, int]]:
    """Carnet ranges shipped and awaiting reception."""
    return list(session.execute(
        sa.select(Shipment.first_carnet, Shipment.last_carnet).join(Tranche)
        .where(Shipment.programme_id == programme.id, Shipment.missing.is_(False),
               Tranche.status == TrancheStatus.EXPEDIEE)).tuples().all())


def available_carnet_numbers(session: Session, programme: Programme, limit: int) -> list[int]:
    """Lowest-numbered carnets entirely in the Métropole's stock and not
    already shipped."""
    in_stock = (sa.select(Carnet.number)
                .join(Pass, Pass.carnet_id == Carnet.id)
                .where(Carnet.programme_id == programme.id)
                .group_by(Carnet.number)
                .having(sa.func.sum(sa.case(
                    (sa.and_(Pass.state.in_((S.ACTIVE, S.RESTITUE)),
                             Pass.holder_id == programme.commanditaire_id), 1), else_=0))
                        == programme.pass_per_carnet)
                .order_by(Carnet.number))
    reserved = reserved_carnets(session, programme)
    numbers = []
    for (number,) in session.execute(in_stock):
        if any(first <= number <= last for first, last in reserved):
            continue
        numbers.append(number)
        if len(numbers) >= limit:
            break
    return numbers


def as_ranges(numbers: list[int]) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for n in sorted(numbers):
        if ranges and n == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], n)
        else:
            ranges.append((n, n))
    return ranges


def ship_tranche(session: Session, tranche: Tranche, ranges: list[tuple[int, int]], *,
                 actor: Actor, today: dt.date) -> Tranche:
    """#APTIC ships carnets for a confirmed tranche to the mairie (art. 3)."""
    programme = tranche.convention.programme
    ledger.lock_head(session, programme.id)
    session.refresh(tranche)
    if tranche.status is not TrancheStatus.CONFIRMEE:
        raise Conflict(f"Cette tranche est {tranche.status.label} : expédition impossible.")
    if not ranges:
        raise InvalidInput("Indiquez les carnets expédiés.", field="ranges")
    numbers: set[int] = set()
    for first, last in ranges:
        if first < 1 or last < first:
            raise InvalidInput("Plage de carnets invalide.", field="ranges")
        numbers.update(range(first, last + 1))
    if len(numbers) * programme.pass_per_carnet != tranche.quantity:
        raise InvalidInput(f"La tranche compte {tranche.quantity} pass, soit "
                           f"{tranche.quantity // programme.pass_per_carnet} carnets ; "
                           f"{len(numbers)} carnets indiqués.", field="ranges")
    free = set(available_carnet_numbers(session, programme, limit=10**9))
    unavailable = sorted(numbers - free)
    if unavailable:
        raise Conflict(f"Carnet n° {unavailable[0]} indisponible : il n'est pas entièrement dans "
                       "le stock activé de la Métropole ou il est déjà expédié.")
    for first, last in as_ranges(sorted(numbers)):
        session.add(Shipment(tranche_id=tranche.id, programme_id=programme.id,
                             first_carnet=first, last_carnet=last))
    tranche.status, tranche.shipped_on, tranche.shipped_by_id = (
        TrancheStatus.EXPEDIEE, today, actor.user_id)
    session.flush()
    return tranche


def confirm_reception(session: Session, tranche: Tranche, *, received_carnets: int,
                      missing_numbers: list[int], note: str, actor: Actor,
                      today: dt.date) -> Tranche:
    """The référent confirms reception (art. 7). A count that differs from the
    shipment is a discrepancy: the missing carnets must be named, stay out of
    the commune and are flagged; the received pass move to the commune."""
    programme = tranche.convention.programme
    ledger.lock_head(session, programme.id)
    session.refresh(tranche)
    if tranche.status is not TrancheStatus.EXPEDIEE:
        raise Conflict(f"Cette tranche est {tranche.status.label} : réception impossible.")
    shipped = [n for s in tranche.shipments for n in range(s.first_carnet, s.last_carnet + 1)]
    if received_carnets < 0 or received_carnets > len(shipped):
        raise InvalidInput(f"Nombre de carnets reçus invalide : {len(shipped)} carnets ont été "
                           "expédiés.", field="received_carnets")
    missing = sorted(set(missing_numbers))
    if any(n not in shipped for n in missing):
        raise InvalidInput("Un carnet déclaré manquant ne fait pas partie de cette expédition.",
                           field="missing")
    if received_carnets != len(shipped) - len(missing):
        raise InvalidInput(f"Écart avec l'expédition ({len(shipped)} carnets) : indiquez les "
                           f"numéros des {len(shipped) - received_carnets} carnets manquants.",
                           field="missing")
    if missing and not (note or "").strip():
        raise InvalidInput("Décrivez l'écart constaté.", field="note")
    received = [n for n in shipped if n not in set(missing)]
    for shipment in list(tranche.shipments):
        session.delete(shipment)
    session.flush()
    for first, last in as_ranges(received):
        session.add(Shipment(tranche_id=tranche.id, programme_id=programme.id,
                             first_carnet=first, last_carnet=last))
    for first, last in as_ranges(missing):
        session.add(Shipment(tranche_id=tranche.id, programme_id=programme.id,
                             first_carnet=first, last_carnet=last, missing=True))
    if received:
        custody.move(session, programme, nature=Nature.LIVRAISON,
                     criteria=[Pass.carnet_id.in_(_carnet_ids(session, programme,
                                                               as_ranges(received)))],
                     to_holder_id=tranche.convention.commune_id,
                     expected_holder_id=programme.commanditaire_id, actor=actor,
                     ref_type="tranche", ref_id=tranche.id,
                     expected_count=len(received) * programme.pass_per_carnet)
    tranche = session.get_one(Tranche, tranche.id)
    tranche.status, tranche.received_on, tranche.received_by_id = (
        TrancheStatus.RECUE, today, actor.user_id)
    tranche.received_quantity = len(received) * programme.pass_per_carnet
    tranche.discrepancy_note = (note or "").strip()[:1000]
    session.flush()
    return tranche


# ---------------------------------------------------------------- répartition (art. 7)

def _carnets_held(session: Session, programme: Programme, holder_id: int, state: S
                  ) -> list[tuple[int, int]]:
    """(id, number) of the carnets whose pass are all in ``state`` held by
    ``holder_id``, by number."""
    return list(session.execute(
        sa.select(Carnet.id, Carnet.number).join(Pass, Pass.carnet_id == Carnet.id)
        .where(Carnet.programme_id == programme.id)
        .group_by(Carnet.id, Carnet.number)
        .having(sa.func.sum(sa.case((sa.and_(Pass.state == state, Pass.holder_id == holder_id),
                                     1), else_=0)) == programme.pass_per_carnet)
        .order_by(Carnet.number)).tuples())


@dataclass(frozen=True)
class CarnetMove:
    """Whole carnets given to (or taken back from) a structure: their numbers
    and the pass they hold."""
    numbers: list[int]
    pass_count: int

    @property
    def text(self) -> str:
        return describe_carnets(self.numbers)


def describe_carnets(numbers: list[int]) -> str:
    """« 50 carnets, n° 501 à 550 », « 3 carnets, n° 1 à 2 et 7 »: carnets
    named by their numbers, in ranges (the répartition speaks in carnets)."""
    if not numbers:
        return "aucun carnet"
    ranges = [f"{first}" if first == last else f"{first} à {last}"
              for first, last in as_ranges(numbers)]
    listed = ranges[0] if len(ranges) == 1 else ", ".join(ranges[:-1]) + " et " + ranges[-1]
    count = len(set(numbers))
    return f"{format_count(count)} carnet{'s' if count > 1 else ''}, n° {listed}"


def structure_carnets(session: Session, programme: Programme, commune: Tenant
                      ) -> dict[int, list[int]]:
    """Per structure of the commune, the numbers of the carnets it was given
    and still holds pass of, not handed out (état réparti)."""
    rows = session.execute(
        sa.select(Pass.holder_id, Carnet.number).join(Carnet, Carnet.id == Pass.carnet_id)
        .where(Pass.programme_id == programme.id, Pass.commune_id == commune.id,
               Pass.state == S.REPARTI)
        .group_by(Pass.holder_id, Carnet.number).order_by(Carnet.number)).all()
    found: dict[int, list[int]] = {}
    for holder, number in rows:
        found.setdefault(holder, []).append(number)
    return found


def structure_stocks(session: Session, programme: Programme, commune: Tenant) -> dict[int, int]:
    """Pass réparti (not yet handed out) per structure of the commune."""
    rows = session.execute(
        sa.select(Pass.holder_id, sa.func.count()).where(
            Pass.programme_id == programme.id, Pass.commune_id == commune.id,
            Pass.state == S.REPARTI).group_by(Pass.holder_id))
    return {holder: int(n) for holder, n in rows}


def commune_stock(session: Session, programme: Programme, commune: Tenant) -> int:
    return int(session.execute(sa.select(sa.func.count()).select_from(Pass).where(
        Pass.programme_id == programme.id, Pass.holder_id == commune.id,
        Pass.state == S.LIVRE)).scalar_one())


def _check_structure(commune: Tenant, structure: Tenant) -> None:
    if structure.kind is not TenantKind.STRUCTURE or structure.parent_id != commune.id:
        raise NotAllowed("Cette structure n'appartient pas à la commune.")
    if not structure.is_prescripteur:
        raise InvalidInput(f"{structure.name} n'est pas une structure prescriptrice.",
                           field="structure_id")


def split_carnets(session: Session, convention: Convention, structure: Tenant,
                  carnet_count: int, *, actor: Actor) -> CarnetMove:
    """The référent gives whole carnets of the commune's stock (the lowest
    numbers first) to a prescripteur structure."""
    commune, programme = convention.commune, convention.programme
    _check_structure(commune, structure)
    if carnet_count < 1:
        raise InvalidInput("Le nombre de carnets doit être au moins 1.", field="carnet_count")
    carnets = _carnets_held(session, programme, commune.id, S.LIVRE)
    if carnet_count > len(carnets):
        raise Conflict(f"La commune ne détient que {len(carnets)} carnet(s) non répartis.",
                       field="carnet_count")
    chosen = carnets[:carnet_count]
    moved = custody.move(session, programme, nature=Nature.REPARTITION,
                         criteria=[Pass.carnet_id.in_([cid for cid, _n in chosen])],
                         to_holder_id=structure.id, expected_holder_id=commune.id, actor=actor,
                         ref_type="structure", ref_id=structure.id,
                         expected_count=carnet_count * programme.pass_per_carnet)
    return CarnetMove([number for _cid, number in chosen], moved)


def take_back_carnets(session: Session, convention: Convention, structure: Tenant,
                      carnet_count: int, *, actor: Actor) -> CarnetMove:
    """The référent takes back whole carnets not yet handed out (the highest
    numbers first)."""
    commune, programme = convention.commune, convention.programme
    _check_structure(commune, structure)
    if carnet_count < 1:
        raise InvalidInput("Le nombre de carnets doit être au moins 1.", field="carnet_count")
    carnets = _carnets_held(session, programme, structure.id, S.REPARTI)
    if carnet_count > len(carnets):
        raise Conflict(f"{structure.name} ne détient que {len(carnets)} carnet(s) complet(s) "
                       "non distribués.", field="carnet_count")
    chosen = carnets[-carnet_count:]
    moved = custody.move(session, programme, nature=Nature.REPRISE,
                         criteria=[Pass.carnet_id.in_([cid for cid, _n in chosen])],
                         to_holder_id=commune.id, expected_holder_id=structure.id, actor=actor,
                         ref_type="structure", ref_id=structure.id,
                         expected_count=carnet_count * programme.pass_per_carnet)
    return CarnetMove([number for _cid, number in chosen], moved)


# ---------------------------------------------------------------- sanctions (art. 11)

def order_sanction(session: Session, convention: Convention, kind: SanctionKind, *,
                   reason: str, quantity: int | None, actor: Actor, today: dt.date) -> Sanction:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Une sanction est toujours motivée : indiquez le motif.",
                           field="reason")
    programme = convention.programme
    kind = SanctionKind(kind)
    if kind is SanctionKind.RESTITUTION:
        if not quantity or quantity < 1 or quantity % programme.pass_per_carnet:
            raise InvalidInput(f"Indiquez un nombre de pass multiple de "
                               f"{programme.pass_per_carnet} (carnets entiers).", field="quantity")
        wanted = quantity // programme.pass_per_carnet
        commune = convention.commune
        carnets = _carnets_held(session, programme, commune.id, S.LIVRE)
        structures = session.execute(sa.select(Tenant.id).where(
            Tenant.parent_id == commune.id)).scalars().all()
        for structure_id in structures:
            carnets += _carnets_held(session, programme, structure_id, S.REPARTI)
        if wanted > len(carnets):
            raise Conflict(f"La commune ne détient que {len(carnets)} carnet(s) complet(s) non "
                           "distribués : restitution impossible au-delà.")
        sanction = Sanction(convention_id=convention.id, kind=kind, quantity=quantity,
                            reason=reason[:1000], decided_on=today, decided_by_id=actor.user_id)
        session.add(sanction)
        session.flush()
        custody.move(session, programme, nature=Nature.RESTITUTION,
                     criteria=[Pass.carnet_id.in_([cid for cid, _n in carnets[:wanted]])],
                     to_holder_id=programme.commanditaire_id, actor=actor, reason=reason,
                     ref_type="sanction", ref_id=sanction.id, expected_count=quantity)
        return sanction
    if kind is SanctionKind.SUSPENSION:
        if convention.abondements_suspended:
            raise Conflict("Les abondements de cette commune sont déjà suspendus.")
        convention.abondements_suspended = True
    elif kind is SanctionKind.LEVEE_SUSPENSION:
        if not convention.abondements_suspended:
            raise Conflict("Les abondements de cette commune ne sont pas suspendus.")
        convention.abondements_suspended = False
    elif kind is SanctionKind.REDUCTION:
        if quantity is None or quantity < 0 or quantity % programme.pass_per_carnet \
                or quantity >= _abondement_size(programme, convention):
            raise InvalidInput("La diminution fixe une taille d'abondement inférieure à "
                               "l'actuelle, en carnets entiers (0 pour supprimer).",
                               field="quantity")
        convention.abondement_size_override = quantity
    sanction = Sanction(convention_id=convention.id, kind=kind, quantity=quantity,
                        reason=reason[:1000], decided_on=today, decided_by_id=actor.user_id)
    session.add(sanction)
    session.flush()
    return sanction


def conventions_of(session: Session, programme: Programme) -> list[Convention]:
    return list(session.execute(
        sa.select(Convention).join(Tenant, Tenant.id == Convention.commune_id)
        .where(Convention.programme_id == programme.id).order_by(Tenant.name)).scalars())
