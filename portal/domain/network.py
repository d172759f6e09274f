"""Hub Francil'IN's view of each commune's network (convention art. 1, 4):
prescripteurs and opérateurs (structures of the commune), facilitateurs (not
users: a list the Hub maintains), trainings and who attended, the opinions
the Hub gave; and the end-of-validity timeline #APTIC runs (DOMAIN.md)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.domain.errors import InvalidInput
from portal.domain.permissions import TenantKind
from portal.models import (Convention, Facilitateur, HubOpinion, Programme, Tenant, Training)


@dataclass
class CommuneNetwork:
    commune: Tenant
    prescripteurs: list[Tenant]
    operateurs: list[Tenant]
    facilitateurs: list[Facilitateur]


def communes_followed(session: Session) -> list[Tenant]:
    """Communes with a convention (the Hub accompanies every programme here)."""
    return list(session.execute(
        sa.select(Tenant).where(Tenant.kind == TenantKind.COMMUNE, Tenant.id.in_(
            sa.select(Convention.commune_id))).order_by(Tenant.name)).scalars())


def networks(session: Session, hub: Tenant) -> list[CommuneNetwork]:
    communes = communes_followed(session)
    ids = [c.id for c in communes]
    structures = session.execute(sa.select(Tenant).where(
        Tenant.kind == TenantKind.STRUCTURE, Tenant.parent_id.in_(ids)).order_by(Tenant.name)
    ).scalars().all()
    facilitateurs = session.execute(sa.select(Facilitateur).where(
        Facilitateur.hub_id == hub.id).order_by(Facilitateur.name)).scalars().all()
    return [CommuneNetwork(c, [s for s in structures if s.parent_id == c.id and s.is_prescripteur],
                           [s for s in structures if s.parent_id == c.id and s.is_operateur],
                           [f for f in facilitateurs if f.commune_id == c.id]) for c in communes]


def add_facilitateur(session: Session, hub: Tenant, commune: Tenant, name: str,
                     organisation: str) -> Facilitateur:
    name = (name or "").strip()
    if not name:
        raise InvalidInput("Indiquez le nom du facilitateur.", field="name")
    if commune.kind is not TenantKind.COMMUNE:
        raise InvalidInput("Commune inconnue.", field="commune_id")
    row = Facilitateur(hub_id=hub.id, commune_id=commune.id, name=name[:200],
                       organisation=(organisation or "").strip()[:200])
    session.add(row)
    session.flush()
    return row


def record_training(session: Session, hub: Tenant, *, held_on: dt.date, topic: str,
                    structure_ids: list[int]) -> Training:
    topic = (topic or "").strip()
    if not topic:
        raise InvalidInput("Indiquez le thème de la formation.", field="topic")
    followed = [c.id for c in communes_followed(session)]
    allowed = set(session.execute(sa.select(Tenant.id).where(
        Tenant.kind == TenantKind.STRUCTURE, Tenant.parent_id.in_(followed))).scalars())
    if set(structure_ids) - allowed:
        raise InvalidInput("Une structure présente n'appartient à aucune commune suivie.",
                           field="structures")
    training = Training(hub_id=hub.id, held_on=held_on, topic=topic[:300],
                        attendees=sorted(set(structure_ids)))
    session.add(training)
    session.flush()
    return training


def trainings_of(session: Session, hub: Tenant) -> list[Training]:
    return list(session.execute(sa.select(Training).where(Training.hub_id == hub.id)
                                .order_by(Training.held_on.desc())).scalars())


def opinions_of(session: Session, hub: Tenant) -> list[tuple[HubOpinion, str]]:
    """Opinions given by the Hub, with the commune's name."""
    return list(session.execute(
        sa.select(HubOpinion, Tenant.name)
        .join(Convention, Convention.id == HubOpinion.convention_id)
        .join(Tenant, Tenant.id == Convention.commune_id)
        .where(HubOpinion.hub_id == hub.id)
        .order_by(HubOpinion.given_on.desc(), HubOpinion.id.desc())).tuples())


# ---------------------------------------------------------------- end of validity (#APTIC)

@dataclass
class Milestone:
    label: str
    on: dt.date
    days_left: int


def validity_timeline(programme: Programme, today: dt.date) -> list[Milestone]:
    """#APTIC help centre: J-30 alert, J-15 blocking process validated by the
    commanditaire, J-7 acknowledgement, J = end of validity, tolerance, J+37
    état contradictoire and credit note (avoir) for unused pass."""
    j = programme.valid_until
    items = [("J-30 : alerte de fin de validité sur les tableaux de bord", j - dt.timedelta(30)),
             ("J-15 : processus de blocage validé par le commanditaire ; les distributeurs "
              "arrêtent la distribution", j - dt.timedelta(15)),
             ("J-7 : le commanditaire prend acte que les pass remis entre-temps sont à sa charge",
              j - dt.timedelta(7)),
             ("J : fin de validité des pass", j),
             ("Fin de la période de tolérance : les pass deviennent invalides",
              programme.tolerance_until),
             ("J+37 : état contradictoire et avoir à la valeur faciale des pass non utilisés",
              j + dt.timedelta(37))]
    return sorted((Milestone(label, on, (on - today).days) for label, on in items),
                  key=lambda m: m.on)
