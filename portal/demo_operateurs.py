"""Demo data of issue 6: qualified opérateurs with services and IBANs, and
one API token (its clear value is printed nowhere; create your own from the
structure's "Jetons d'API" page). Called once from ``portal.demo``.

``distribute_carnets`` hands carnets out through custody for tests, the
benchmark and ``flask --app wsgi demo-distribute`` until the distribution
screens exist.
"""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.domain import api_tokens, custody, operateurs
from portal.domain.ledger import Actor
from portal.domain.permissions import TenantKind
from portal.models import Carnet, Pass, Programme, Qualification, Tenant
from portal.models.ledger import Nature

SERVICES = [("Démarches administratives en ligne", 1, 60), ("Créer et utiliser une adresse "
            "e-mail", 1, 60), ("Atelier traitement de texte (2 h)", 2, 120)]


def demo_iban(n: int) -> str:
    """A French IBAN with a correct mod-97 key (fictitious bank 30004)."""
    bban = f"30004{n:05d}{n:011d}{(97 - (n % 97)):02d}"
    converted = "".join(str(int(c, 36)) for c in bban + "FR00")
    return f"FR{98 - int(converted) % 97:02d}{bban}"


def distribute_carnets(session: Session, programme: Programme, commune: Tenant,
                       structure: Tenant, carnet_numbers: list[int], prescripteur_user_id: int
                       ) -> None:
    """Deliver, split and hand out whole carnets through custody (what the
    distribution issue will do from its own screens)."""
    ids = select_pass_ids(session, programme, carnet_numbers)
    criteria = [Pass.id.in_(ids)]
    custody.move(session, programme, nature=Nature.LIVRAISON, criteria=criteria,
                 to_holder_id=commune.id, actor=Actor(None, programme.issuer_id))
    custody.move(session, programme, nature=Nature.REPARTITION, criteria=criteria,
                 to_holder_id=structure.id, actor=Actor(None, commune.id))
    custody.move(session, programme, nature=Nature.DISTRIBUTION, criteria=criteria,
                 to_holder_id=structure.id, actor=Actor(prescripteur_user_id, structure.id))


def select_pass_ids(session: Session, programme: Programme, carnet_numbers: list[int]) -> list[int]:
    return list(session.execute(
        sa.select(Pass.id).join(Carnet, Carnet.id == Pass.carnet_id)
        .where(Pass.programme_id == programme.id, Carnet.number.in_(carnet_numbers))
        .order_by(Pass.id)).scalars())


def load_operateur_demo(session: Session) -> None:
    aptic = session.execute(sa.select(Tenant).where(Tenant.slug == "aptic")).scalar_one()
    structures = session.execute(sa.select(Tenant).where(
        Tenant.kind == TenantKind.STRUCTURE, Tenant.is_operateur.is_(True))
        .order_by(Tenant.id)).scalars().all()
    system = Actor(None, aptic.id)
    for n, structure in enumerate(structures, start=1):
        operateurs.set_qualification(session, structure, Qualification.QUALIFIE, reason="",
                                     actor=system)
        operateurs.approve_by_commune(session, structure.parent, structure, approve=True,
                                      actor=Actor(None, structure.parent_id))
        for name, price, minutes in SERVICES:
            operateurs.add_service(session, structure, name=name, price_pass=price,
                                   duration_minutes=minutes)
        details = operateurs.submit_bank_details(session, structure, holder=structure.name,
                                                 iban=demo_iban(n), bic="BNPAFRPPXXX",
                                                 actor=system)
        operateurs.review_bank_details(session, details, accept=True, reason="", actor=system)
    bondy_social = next(s for s in structures if s.slug == "bondy-centre-social")
    api_tokens.create(session, bondy_social, "Tablette de démonstration", system)
