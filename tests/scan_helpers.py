"""Helpers for the scanning tests (issue 6): tokens, QR payloads, pass."""
from __future__ import annotations

import sqlalchemy as sa

from portal.domain import api_tokens, keys, serials
from portal.domain.ledger import Actor
from portal.models import Carnet, Pass, PassState, Programme, Tenant

OPERATEUR = "bondy-centre-social"          # qualified in the demo data
PRESCRIPTEUR_EMAIL = "prescripteur.bondy-ccas@demo.pass-numerique.fr"


def structure(session, slug: str = OPERATEUR) -> Tenant:
    return session.execute(sa.select(Tenant).where(Tenant.slug == slug)).scalar_one()


def new_token(session, slug: str = OPERATEUR, user_id: int | None = None) -> str:
    _row, token = api_tokens.create(session, structure(session, slug), "Test",
                                    Actor(user_id, None))
    return token


def distributed(session, limit: int = 10, offset: int = 0) -> list[Pass]:
    return list(session.execute(
        sa.select(Pass).where(Pass.state == PassState.DISTRIBUE).order_by(Pass.id)
        .offset(offset).limit(limit)).scalars())


def in_state(session, state: PassState, limit: int = 1) -> list[Pass]:
    return list(session.execute(sa.select(Pass).where(Pass.state == state).order_by(Pass.id)
                                .limit(limit)).scalars())


def qr(found: Pass) -> str:
    return serials.qr_payload("HTTP://LOCALHOST", keys.pass_ring(), found.key_id, found.serial)


def verification_code(found: Pass) -> str:
    return serials.verification_code(keys.pass_ring(), found.key_id, found.serial)


def programme_of(session, prefix: str = "MGP2") -> Programme:
    return session.execute(sa.select(Programme).where(Programme.prefix == prefix)).scalar_one()


def carnet_number(session, found: Pass) -> int:
    return session.get(Carnet, found.carnet_id).number


def hand_out(session, carnets=range(901, 911), prefix: str = "MGP2",
             structure_slug: str = "bondy-ccas") -> list[int]:
    """Hand carnets out (livraison → répartition → distribution by the
    Bondy CCAS prescripteur) and return their pass ids."""
    from portal.demo_operateurs import distribute_carnets, select_pass_ids
    from portal.domain import accounts
    programme = programme_of(session, prefix)
    ccas = structure(session, structure_slug)
    user = accounts.find_user(session, PRESCRIPTEUR_EMAIL)
    distribute_carnets(session, programme, ccas.parent, ccas, list(carnets), user.id)
    session.commit()
    return select_pass_ids(session, programme, list(carnets))
