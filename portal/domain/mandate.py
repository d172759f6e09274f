"""The #APTIC mandate (délibération CM2022/04/04/38, CGCT L1611-7 IV).

Pass are payment instruments with a face value (DGFiP/ANCT note of
07/07/2021): in a collectivité only régisseurs could hand them out. Instead
the Métropole (mandant) gives #APTIC a convention de mandat, and #APTIC,
"au nom et pour le compte" of the Métropole, entrusts prescription to named
public agents of the communes — habilitations — without any régie.

Rules here:
* a mandate may not end more than 14 months after the accord-cadre
  (délibération 2022: "pour une durée n'excédant pas quatorze mois après le
  terme prévu par l'accord-cadre");
* no habilitation exists outside a mandate in force; when the mandate ends
  or is terminated, its habilitations stop working (validity is computed
  when read, never stored);
* habilitations of one agent for one structure may not overlap;
* a revoked habilitation stops working from its revocation date.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.domain import journal
from portal.domain.errors import Conflict, InvalidInput, NotAllowed
from portal.domain.ledger import Actor
from portal.domain.permissions import Role, TenantKind
from portal.formatting import PARIS, format_datetime
from portal.models import (Habilitation, HabilitationRequest, Mandate, MandateStatus, Membership,
                           RequestStatus, Tenant, User, utcnow)

MAX_MONTHS_AFTER_ACCORD_CADRE = 14


def _fr(day: dt.date) -> str:
    return day.strftime("%d/%m/%Y")


def add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    last = [31, 29 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 28, 31, 30, 31,
            30, 31, 31, 30, 31, 30, 31][month - 1]
    return dt.date(year, month, min(day.day, last))


def latest_end(accord_cadre_ends_on: dt.date) -> dt.date:
    return add_months(accord_cadre_ends_on, MAX_MONTHS_AFTER_ACCORD_CADRE)


# ---------------------------------------------------------------- mandates

def create_mandate(session: Session, *, mandant: Tenant, mandataire: Tenant, reference: str,
                   accord_cadre_reference: str, accord_cadre_ends_on: dt.date,
                   starts_on: dt.date, ends_on: dt.date, advance_ceiling_cents: int = 0,
                   fee_cents: int = 0, accountant_consulted_on: dt.date | None = None,
                   scope_distribution: bool = True, scope_contre_paiement: bool = True) -> Mandate:
    if mandant.kind is not TenantKind.METROPOLE or mandataire.kind is not TenantKind.MANDATAIRE:
        raise InvalidInput("Un mandat lie un commanditaire (mandant) et #APTIC (mandataire).")
    reference, accord = (reference or "").strip(), (accord_cadre_reference or "").strip()
    if not reference or not accord:
        raise InvalidInput("Les références du mandat et de l'accord-cadre sont obligatoires.",
                           field="reference")
    if ends_on <= starts_on:
        raise InvalidInput("Le mandat doit finir après son début.", field="ends_on")
    if ends_on > latest_end(accord_cadre_ends_on):
        raise InvalidInput(
            f"Fin du mandat refusée : au plus {MAX_MONTHS_AFTER_ACCORD_CADRE} mois après le terme "
            f"de l'accord-cadre, soit le {_fr(latest_end(accord_cadre_ends_on))} au plus tard "
            "(délibération CM2022/04/04/38).", field="ends_on")
    if advance_ceiling_cents < 0 or fee_cents < 0:
        raise InvalidInput("Plafond d'avance et rémunération ne peuvent être négatifs.")
    if not (scope_distribution or scope_contre_paiement):
        raise InvalidInput("Le mandat doit couvrir au moins une mission.", field="scope")
    mandate = Mandate(mandant_id=mandant.id, mandataire_id=mandataire.id, reference=reference[:80],
                      accord_cadre_reference=accord[:80], accord_cadre_ends_on=accord_cadre_ends_on,
                      starts_on=starts_on, ends_on=ends_on,
                      advance_ceiling_cents=advance_ceiling_cents, fee_cents=fee_cents,
                      accountant_consulted_on=accountant_consulted_on,
                      scope_distribution=scope_distribution,
                      scope_contre_paiement=scope_contre_paiement)
    session.add(mandate)
    session.flush()
    return mandate


def sign_mandate(session: Session, mandate: Mandate, signed_on: dt.date) -> Mandate:
    if mandate.status is not MandateStatus.BROUILLON:
        raise Conflict("Ce mandat n'est plus un brouillon.")
    mandate.status, mandate.signed_on = MandateStatus.SIGNE, signed_on
    session.flush()
    return mandate


def terminate_mandate(session: Session, mandate: Mandate, on: dt.date, reason: str) -> Mandate:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Indiquez le motif de la fin du mandat.", field="reason")
    if mandate.status is MandateStatus.TERMINE:
        raise Conflict("Ce mandat est déjà terminé.")
    mandate.status, mandate.ended_on, mandate.end_reason = MandateStatus.TERMINE, on, reason[:500]
    session.flush()
    return mandate


def mandate_status_label(mandate: Mandate, today: dt.date) -> str:
    """brouillon, signé (pas encore en vigueur), en vigueur, terminé — computed."""
    if mandate.status is MandateStatus.BROUILLON:
        return "brouillon"
    if mandate.status is MandateStatus.TERMINE and mandate.ended_on and mandate.ended_on <= today:
        return "terminé"
    if today < mandate.starts_on:
        return "signé, pas encore en vigueur"
    if today > mandate.ends_on:
        return "terminé"
    return "en vigueur"


def mandate_in_force(mandate: Mandate, today: dt.date) -> str | None:
    """None when in force, else the French reason why not."""
    if mandate.status is MandateStatus.BROUILLON:
        return "le mandat n'est pas signé"
    if mandate.status is MandateStatus.TERMINE and mandate.ended_on and mandate.ended_on <= today:
        return f"le mandat a pris fin le {_fr(mandate.ended_on)}"
    if today < mandate.starts_on:
        return f"le mandat n'entre en vigueur que le {_fr(mandate.starts_on)}"
    if today > mandate.ends_on:
        return f"le mandat a expiré le {_fr(mandate.ends_on)}"
    return None


# ---------------------------------------------------------------- habilitations

def _check_agent(session: Session, user: User, structure: Tenant) -> None:
    if structure.kind is not TenantKind.STRUCTURE or not structure.is_prescripteur:
        raise InvalidInput(f"{structure.name} n'est pas une structure prescriptrice.",
                           field="structure_id")
    member = session.execute(sa.select(Membership).where(
        Membership.user_id == user.id, Membership.tenant_id == structure.id,
        Membership.role == Role.PRESCRIPTEUR_AGENT)).scalar_one_or_none()
    if member is None:
        raise InvalidInput(f"{user.full_name} n'est pas prescripteur de {structure.name}.",
                           field="user_id")


def grant_habilitation(session: Session, mandate: Mandate, *, user: User, structure: Tenant,
                       starts_on: dt.date, ends_on: dt.date, actor: Actor,
                       today: dt.date) -> Habilitation:
    reason = mandate_in_force(mandate, max(today, starts_on))
    if reason or not mandate.scope_distribution:
        raise Conflict("Habilitation impossible : " + (reason or "le mandat ne couvre pas la "
                                                       "remise de pass") + ".")
    if ends_on < starts_on:
        raise InvalidInput("La fin de l'habilitation doit suivre son début.", field="ends_on")
    if ends_on > mandate.ends_on:
        raise InvalidInput(f"L'habilitation ne peut dépasser la fin du mandat "
                           f"({_fr(mandate.ends_on)}).", field="ends_on")
    _check_agent(session, user, structure)
    overlapping = session.execute(sa.select(Habilitation).where(
        Habilitation.user_id == user.id, Habilitation.structure_id == structure.id,
        Habilitation.starts_on <= ends_on, Habilitation.ends_on >= starts_on,
        sa.or_(Habilitation.revoked_on.is_(None), Habilitation.revoked_on > starts_on))
    ).scalars().first()
    if overlapping is not None:
        raise Conflict(f"{user.full_name} est déjà habilité(e) pour {structure.name} du "
                       f"{_fr(overlapping.starts_on)} au {_fr(overlapping.ends_on)} : les "
                       "habilitations ne peuvent se chevaucher.")
    habilitation = Habilitation(mandate_id=mandate.id, user_id=user.id, structure_id=structure.id,
                                starts_on=starts_on, ends_on=ends_on, granted_by_id=actor.user_id)
    session.add(habilitation)
    session.flush()
    journal.record(session, action="habilitation.granted", actor=actor, tenant_id=structure.id,
                   target="habilitation", target_id=habilitation.id,
                   after={"agent": user.email, "du": starts_on, "au": ends_on,
                          "mandat": mandate.reference})
    return habilitation


def revoke_habilitation(session: Session, habilitation: Habilitation, *, on: dt.date,
                        reason: str, actor: Actor, now: dt.datetime | None = None
                        ) -> Habilitation:
    """Revoke from a moment, never backwards: the distributions already made
    under the habilitation were made by a habilitated agent and stay valid
    in the accounts (CGCT L1611-7 IV: the reddition lists each distribution
    with its habilitation; a backdated revocation would silently contradict
    them). Dated today: effective at once (this very moment). Dated later:
    effective at 00:00, Paris time, that day. Dated earlier: refused."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Indiquez le motif de la révocation.", field="reason")
    if habilitation.revoked_at is not None or habilitation.revoked_on is not None:
        raise Conflict("Cette habilitation est déjà révoquée.")
    now = now or utcnow()
    today = now.astimezone(PARIS).date()
    if on < today:
        raise InvalidInput(f"Une révocation ne peut pas être antidatée (avant le {_fr(today)}) : "
                           "les remises déjà faites sous cette habilitation restent valables. "
                           "Révoquez à partir d'aujourd'hui.", field="revoked_on")
    effective = now if on == today else dt.datetime.combine(on, dt.time(), PARIS).astimezone(
        dt.timezone.utc)
    habilitation.revoked_on, habilitation.revoked_at = on, effective
    habilitation.revocation_reason = reason[:500]
    habilitation.revoked_by_id = actor.user_id
    session.flush()
    journal.record(session, action="habilitation.revoked", actor=actor,
                   tenant_id=habilitation.structure_id, target="habilitation",
                   target_id=habilitation.id, after={"le": on, "motif": reason[:500]})
    return habilitation


def revoked_by(habilitation: Habilitation, moment: dt.datetime) -> bool:
    """Whether the revocation has taken effect at ``moment``."""
    return habilitation.revoked_at is not None and habilitation.revoked_at <= moment


def habilitation_problem(habilitation: Habilitation, today: dt.date,
                         now: dt.datetime | None = None) -> str | None:
    """None when the habilitation works now (``today`` in Paris), else the
    French reason. A revocation counts from its moment (``revoked_at``)."""
    if now is None:
        now = utcnow()
        if now.astimezone(PARIS).date() != today:    # asked about another day: its start
            now = dt.datetime.combine(today, dt.time(), PARIS).astimezone(dt.timezone.utc)
    if revoked_by(habilitation, now):
        return (f"habilitation révoquée le {format_datetime(habilitation.revoked_at)} "
                f"({habilitation.revocation_reason})")
    if today < habilitation.starts_on:
        return f"habilitation valable seulement à partir du {_fr(habilitation.starts_on)}"
    if today > habilitation.ends_on:
        return f"habilitation expirée le {_fr(habilitation.ends_on)}"
    return mandate_in_force(habilitation.mandate, today)


@dataclass(frozen=True)
class HabilitationCheck:
    habilitation: Habilitation | None
    problem: str | None


def valid_habilitation(session: Session, user_id: int, structure_id: int,
                       today: dt.date) -> HabilitationCheck:
    """The habilitation that lets this agent hand out pass for this structure today."""
    candidates = session.execute(sa.select(Habilitation).where(
        Habilitation.user_id == user_id, Habilitation.structure_id == structure_id)
        .order_by(Habilitation.starts_on.desc())).scalars().all()
    problems = []
    for habilitation in candidates:
        problem = habilitation_problem(habilitation, today)
        if problem is None:
            return HabilitationCheck(habilitation, None)
        problems.append(problem)
    if not candidates:
        others = session.execute(sa.select(sa.func.count()).select_from(Habilitation).where(
            Habilitation.user_id == user_id)).scalar()
        problems.append("habilitation accordée pour une autre structure" if others
                        else "aucune habilitation de #APTIC")
    return HabilitationCheck(None, problems[0])


# ---------------------------------------------------------------- requests from communes

def request_habilitation(session: Session, commune: Tenant, *, user: User, structure: Tenant,
                         starts_on: dt.date, ends_on: dt.date, actor: Actor) -> HabilitationRequest:
    if structure.parent_id != commune.id:
        raise NotAllowed("Cette structure n'appartient pas à la commune.")
    if ends_on < starts_on:
        raise InvalidInput("La fin doit suivre le début.", field="ends_on")
    _check_agent(session, user, structure)
    pending = session.execute(sa.select(HabilitationRequest.id).where(
        HabilitationRequest.user_id == user.id, HabilitationRequest.structure_id == structure.id,
        HabilitationRequest.status == RequestStatus.EN_ATTENTE)).first()
    if pending:
        raise Conflict("Une demande est déjà en attente pour cet agent et cette structure.")
    request = HabilitationRequest(commune_id=commune.id, user_id=user.id, structure_id=structure.id,
                                  starts_on=starts_on, ends_on=ends_on,
                                  requested_by_id=actor.user_id)
    session.add(request)
    session.flush()
    return request


def decide_request(session: Session, request: HabilitationRequest, *, grant: bool,
                   mandate: Mandate | None, reason: str, actor: Actor,
                   today: dt.date) -> HabilitationRequest:
    if request.status is not RequestStatus.EN_ATTENTE:
        raise Conflict(f"Cette demande est déjà {request.status.label}.")
    if grant:
        if mandate is None:
            raise InvalidInput("Choisissez le mandat sous lequel habiliter.", field="mandate_id")
        habilitation = grant_habilitation(session, mandate, user=request.user,
                                          structure=request.structure,
                                          starts_on=request.starts_on, ends_on=request.ends_on,
                                          actor=actor, today=today)
        request.status, request.habilitation_id = RequestStatus.ACCORDEE, habilitation.id
    else:
        reason = (reason or "").strip()
        if not reason:
            raise InvalidInput("Un refus est toujours motivé : indiquez le motif.", field="reason")
        request.status = RequestStatus.REFUSEE
        journal.record(session, action="habilitation.refused", actor=actor,
                       tenant_id=request.structure_id, target="demande d'habilitation",
                       target_id=request.id, after={"motif": reason[:500]})
    request.reason = (reason or "").strip()[:500]
    request.decided_by_id, request.decided_at = actor.user_id, utcnow()
    session.flush()
    return request


def mandates_of(session: Session, tenant: Tenant) -> list[Mandate]:
    return list(session.execute(sa.select(Mandate).where(Mandate.tenant_clause(tenant))
                                .order_by(Mandate.starts_on.desc())).scalars())
