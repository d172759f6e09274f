"""Handing a carnet to a beneficiary at the prescripteur's desk.

Convention art. 8: the prescripteur checks eligibility (target public of the
programme, primo-diagnostic of needs), hands out a carnet with the
explanatory document, fills in one evaluation questionnaire per beneficiary.
Délibération 2022: only an agent holding a valid habilitation from #APTIC,
under a mandate in force, may hand out pass; the distribution records them.

No personal data: the beneficiary is a pseudonymous code written on the
carnet; the questionnaire holds categories only.
"""
from __future__ import annotations

import datetime as dt
import secrets

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.domain import custody, labels, mandate as mandates, validity
from portal.domain.errors import Conflict, InvalidInput, NotAllowed
from portal.domain.ledger import Actor
from portal.domain.issuance import TARGET_PUBLICS
from portal.models import (Beneficiary, Carnet, Distribution, Pass, Programme,
                           QuestionnaireAnswer, Tenant)
from portal.models.issuance import PassState as S
from portal.models.ledger import Nature

# The vocabularies and their labels live in the one mapping place (portal.domain.labels).
NEEDS = labels.NEEDS
QUESTIONNAIRE = labels.QUESTIONNAIRE

CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_beneficiary_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))
    return f"B-{raw[:4]}-{raw[4:]}"


def validate_answers(answers: dict[str, str]) -> dict[str, str]:
    clean = {}
    for question, (label, options) in QUESTIONNAIRE.items():
        value = answers.get(question)
        if value not in options:
            raise InvalidInput(f"Questionnaire : répondez à « {label} ».", field=question)
        clean[question] = value
    unknown = set(answers) - set(QUESTIONNAIRE)
    if unknown:
        raise InvalidInput("Question inconnue dans le questionnaire.")
    return clean


def structure_stock(session: Session, structure: Tenant) -> dict[int, list[tuple[int, int]]]:
    """Per programme: (carnet number, pass left) of carnets with pass réparti here."""
    rows = session.execute(
        sa.select(Carnet.programme_id, Carnet.number, sa.func.count())
        .join(Pass, Pass.carnet_id == Carnet.id)
        .where(Pass.holder_id == structure.id, Pass.state == S.REPARTI)
        .group_by(Carnet.programme_id, Carnet.number).order_by(Carnet.number)).all()
    stock: dict[int, list[tuple[int, int]]] = {}
    for programme_id, number, left in rows:
        stock.setdefault(programme_id, []).append((number, int(left)))
    return stock


def hand_out(session: Session, *, programme: Programme, structure: Tenant, user_id: int,
             carnet_number: int, pass_count: int | None, target_public: str, needs: list[str],
             answers: dict[str, str], request_token: str, today: dt.date) -> Distribution:
    """Hand out ``pass_count`` pass (default: the whole carnet) of one carnet
    of the structure's stock. The same ``request_token`` twice returns the
    first distribution (a double click makes one distribution)."""
    if not request_token or len(request_token) > 64:
        raise InvalidInput("Formulaire invalide : rechargez la page.")
    existing = session.execute(sa.select(Distribution).where(
        Distribution.request_token == request_token)).scalar_one_or_none()
    if existing is not None:
        if existing.structure_id != structure.id or existing.user_id != user_id:
            raise Conflict("Formulaire déjà utilisé : rechargez la page.")
        return existing
    check = mandates.valid_habilitation(session, user_id, structure.id, today)
    if check.habilitation is None:
        raise NotAllowed(f"Vous ne pouvez pas remettre de pass : {check.problem}. "
                         "Demandez une habilitation à votre référent de projet.")
    habilitation = check.habilitation
    validity.ensure_distribution_allowed(programme, today)   # J-15 blocking, validity end
    if target_public not in programme.target_publics:
        raise InvalidInput("Cette personne ne relève pas d'un public cible du programme : "
                           + ", ".join(TARGET_PUBLICS[p] for p in programme.target_publics) + ".",
                           field="target_public")
    needs = sorted(set(needs))
    if not needs or any(n not in NEEDS for n in needs):
        raise InvalidInput("Primo-diagnostic : cochez au moins un besoin.", field="needs")
    answers = validate_answers(answers)
    carnet = session.execute(sa.select(Carnet).where(
        Carnet.programme_id == programme.id, Carnet.number == carnet_number)).scalar_one_or_none()
    available = [] if carnet is None else session.execute(
        sa.select(Pass.id).where(Pass.carnet_id == carnet.id, Pass.state == S.REPARTI,
                                 Pass.holder_id == structure.id)
        .order_by(Pass.index_in_carnet)).scalars().all()
    if carnet is None or not available:
        raise Conflict(f"Le carnet n° {carnet_number} n'est pas dans le stock de votre "
                       "structure (ou il a déjà été remis).", field="carnet_number")
    count = programme.pass_per_carnet if pass_count is None else pass_count
    if count < 1:
        raise InvalidInput("Le nombre de pass doit être au moins 1.", field="pass_count")
    if count != programme.pass_per_carnet and not programme.allow_partial_carnet:
        raise InvalidInput("Ce programme ne prévoit que la remise de carnets complets "
                           f"({programme.pass_per_carnet} pass).", field="pass_count")
    if count > len(available):
        raise Conflict(f"Il ne reste que {len(available)} pass dans le carnet n° {carnet_number}.",
                       field="pass_count")
    chosen = available[:count]
    beneficiary = Beneficiary(code=new_beneficiary_code())
    session.add(beneficiary)
    session.flush()
    distribution = Distribution(
        programme_id=programme.id, structure_id=structure.id, commune_id=structure.parent_id,
        user_id=user_id, habilitation_id=habilitation.id, mandate_id=habilitation.mandate_id,
        beneficiary_id=beneficiary.id, carnet_id=carnet.id, pass_count=count,
        pass_first_id=chosen[0], pass_last_id=chosen[-1], target_public=target_public,
        needs=needs, request_token=request_token)
    session.add(distribution)
    session.flush()
    for question, answer in answers.items():
        session.add(QuestionnaireAnswer(distribution_id=distribution.id, question=question,
                                        answer=answer))
    custody.move(session, programme, nature=Nature.DISTRIBUTION,
                 criteria=[Pass.id.in_(chosen)], to_holder_id=structure.id,
                 expected_holder_id=structure.id, actor=Actor(user_id, structure.id),
                 ref_type="distribution", ref_id=distribution.id, expected_count=count)
    return session.get_one(Distribution, distribution.id)


def handed_out_by(session: Session, pass_id: int) -> int | None:
    """The user who handed this pass to a beneficiary, from the ledger (the
    DISTRIBUTION entry covering it) — used for the distinct-persons rule of
    convention art. 8."""
    programme_id = session.execute(sa.select(Pass.programme_id).where(Pass.id == pass_id)
                                   ).scalar_one_or_none()
    if programme_id is None:
        return None
    from portal.models import LedgerEntry
    return session.execute(
        sa.select(LedgerEntry.actor_user_id).where(
            LedgerEntry.programme_id == programme_id, LedgerEntry.nature == Nature.DISTRIBUTION,
            LedgerEntry.pass_first_id <= pass_id, LedgerEntry.pass_last_id >= pass_id)
        .order_by(LedgerEntry.id.desc()).limit(1)).scalar_one_or_none()
