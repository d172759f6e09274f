"""« À traiter »: what waits for a tenant, counted for its home page.

One function per tenant kind returns the items with a count above zero,
each naming the endpoint (and its URL arguments) of the page where it is
handled. Every count goes through the same scoping as that page
(``Model.tenant_clause`` or the domain filter it uses), so a tenant only
ever counts its own things. A handful of COUNT queries per home page."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.domain import allocation
from portal.domain.permissions import TenantKind
from portal.models import (Anomaly, BankDetails, Convention, HabilitationRequest, HubOpinion,
                           OperateurProfile, Pass, PassOrder, Programme, RequestStatus,
                           Statement, Tenant, Tranche, TrancheStatus)
from portal.models.issuance import PassState
from portal.models.operateurs import Qualification, ReviewStatus
from portal.models.settlement import StatementStatus


@dataclass(frozen=True)
class Item:
    label: str
    count: int
    endpoint: str
    kwargs: dict = field(default_factory=dict)


def _kept(items: list[Item]) -> list[Item]:
    return [i for i in items if i.count > 0]


def _count(session: Session, query) -> int:
    return int(session.execute(query).scalar() or 0)


def _per_programme(session: Session, query, label: str, endpoint: str, key: str = "programme_id",
                   several: bool = True) -> list[Item]:
    """``query`` yields (programme id, programme name, count) rows."""
    rows = session.execute(query).all()
    return [Item(f"{label} ({name})" if several else label, int(n), endpoint, {key: pid})
            for pid, name, n in rows]


# ---------------------------------------------------------------- Métropole

def metropole_items(session: Session, metropole: Tenant, today: dt.date) -> list[Item]:
    """Amorçage requests to confirm (art. 4), communes that became abondement
    candidates (art. 5), conventions awaiting the Métropole's signature,
    orders awaiting its numéro de mandat, a blocking proposed by #APTIC."""
    programmes = session.execute(sa.select(Programme).where(
        Programme.commanditaire_id == metropole.id).order_by(Programme.id)).scalars().all()
    ids = [p.id for p in programmes]
    if not ids:
        return []
    several = len(programmes) > 1
    items = _per_programme(
        session, sa.select(Programme.id, Programme.name, sa.func.count())
        .select_from(Tranche).join(Convention, Convention.id == Tranche.convention_id)
        .join(Programme, Programme.id == Convention.programme_id)
        .where(Programme.id.in_(ids), Tranche.status == TrancheStatus.DEMANDEE)
        .group_by(Programme.id, Programme.name).order_by(Programme.id),
        "Demandes d'amorçage à confirmer", "metropole.allocation_page", several=several)
    for programme in programmes:
        if today >= programme.request_window_end:
            continue   # no abondement any more (art. 5): no need to compute candidates
        eligible = sum(1 for c in allocation.abondement_candidates(session, programme, today)
                       if c.eligible)
        items.append(Item(f"Communes candidates à un abondement ({programme.name})" if several
                          else "Communes candidates à un abondement", eligible,
                          "metropole.allocation_page", {"programme_id": programme.id}))
    items += _per_programme(
        session, sa.select(Programme.id, Programme.name, sa.func.count())
        .select_from(Convention).join(Programme, Programme.id == Convention.programme_id)
        .where(Programme.id.in_(ids), Convention.signed_by_metropole_on.is_(None))
        .group_by(Programme.id, Programme.name).order_by(Programme.id),
        "Conventions à signer par la Métropole", "metropole.allocation_page", several=several)
    items += _per_programme(
        session, sa.select(Programme.id, Programme.name, sa.func.count())
        .select_from(PassOrder).join(Programme, Programme.id == PassOrder.programme_id)
        .where(PassOrder.tenant_clause(metropole), PassOrder.payment_reference.is_(None))
        .group_by(Programme.id, Programme.name).order_by(Programme.id),
        "Commandes en attente du numéro de mandat", "metropole.programme", several=several)
    blocking = sum(1 for p in programmes
                   if p.blocking_proposed_at is not None and p.distribution_blocked_at is None)
    items.append(Item("Blocage de la distribution à valider (fin de validité)", blocking,
                      "metropole.validity_page"))
    return _kept(items)


# ---------------------------------------------------------------- #APTIC

def _territory_operateurs(tenant: Tenant):
    """Opérateur structures of the communes with a convention on one of the
    tenant's programmes (as the #APTIC dashboard's opérateur panels)."""
    return sa.and_(Tenant.kind == TenantKind.STRUCTURE, Tenant.is_operateur.is_(True),
                   Tenant.parent_id.in_(sa.select(Convention.commune_id).where(
                       Convention.tenant_clause(tenant))))


def mandataire_items(session: Session, aptic: Tenant, today: dt.date) -> list[Item]:
    """Habilitation requests, tranches to ship, orders to activate,
    opérateurs and IBAN to examine, statements to validate and to pay,
    anomalies not reviewed."""
    requests = _count(session, sa.select(sa.func.count()).select_from(HabilitationRequest).where(
        HabilitationRequest.tenant_clause(aptic),
        HabilitationRequest.status == RequestStatus.EN_ATTENTE))
    to_ship = _count(session, sa.select(sa.func.count()).select_from(Tranche).where(
        Tranche.tenant_clause(aptic), Tranche.status == TrancheStatus.CONFIRMEE))
    to_activate = _count(session, sa.select(sa.func.count()).select_from(PassOrder).where(
        PassOrder.tenant_clause(aptic), PassOrder.payment_reference.is_not(None),
        PassOrder.activated_at.is_(None)))
    to_qualify = _count(session, sa.select(sa.func.count()).select_from(Tenant)
                        .outerjoin(OperateurProfile, OperateurProfile.structure_id == Tenant.id)
                        .where(_territory_operateurs(aptic), sa.or_(
                            OperateurProfile.id.is_(None),
                            OperateurProfile.qualification == Qualification.EN_ATTENTE)))
    iban = _count(session, sa.select(sa.func.count()).select_from(BankDetails).where(
        BankDetails.tenant_clause(aptic), BankDetails.status == ReviewStatus.EN_ATTENTE))
    statements = dict(session.execute(
        sa.select(Statement.status, sa.func.count()).where(
            Statement.tenant_clause(aptic),
            Statement.status.in_((StatementStatus.BROUILLON, StatementStatus.VALIDE)))
        .group_by(Statement.status)).tuples().all())
    anomalies = _count(session, sa.select(sa.func.count()).select_from(Anomaly).where(
        Anomaly.tenant_clause(aptic), Anomaly.reviewed_at.is_(None)))
    return _kept([
        Item("Demandes d'habilitation à examiner", requests, "mandataire.requests"),
        Item("Tranches confirmées à expédier", to_ship, "mandataire.shipments"),
        Item("Commandes à activer (numéro de mandat reçu)", to_activate,
             "mandataire.issuance_page"),
        Item("Opérateurs en attente de qualification", to_qualify, "mandataire.operateurs_page"),
        Item("IBAN à vérifier", iban, "mandataire.operateurs_page"),
        Item("Relevés de contre-paiement à valider",
             int(statements.get(StatementStatus.BROUILLON, 0)), "mandataire.statements_page"),
        Item("Relevés validés à payer", int(statements.get(StatementStatus.VALIDE, 0)),
             "mandataire.statements_page"),
        Item("Anomalies de scan à examiner", anomalies, "mandataire.anomalies_page"),
    ])


# ---------------------------------------------------------------- commune

def commune_items(session: Session, commune: Tenant, today: dt.date) -> list[Item]:
    """Deliveries whose reception is to confirm (art. 4, 7), carnets received
    and not split among the prescripteurs (art. 7), conventions to sign or
    without a référent, opérateurs qualified by #APTIC awaiting the commune's
    approval."""
    conventions = session.execute(
        sa.select(Convention.id, Programme.name, Convention.signed_by_commune_on,
                  Convention.referent_designated_on)
        .join(Programme, Programme.id == Convention.programme_id)
        .where(Convention.tenant_clause(commune)).order_by(Convention.id)).all()
    several = len(conventions) > 1

    def label(text: str, name: str) -> str:
        return f"{text} ({name})" if several else text

    names = {cid: name for cid, name, _s, _r in conventions}
    items = [Item(label("Convention à signer par la commune", name), 1, "commune.convention",
                  {"convention_id": cid})
             for cid, name, signed, _r in conventions if signed is None]
    items += [Item(label("Référent de projet à désigner", name), 1, "commune.convention",
                   {"convention_id": cid})
              for cid, name, signed, referent in conventions
              if signed is not None and referent is None]
    shipped = session.execute(
        sa.select(Tranche.convention_id, sa.func.count()).where(
            Tranche.tenant_clause(commune), Tranche.status == TrancheStatus.EXPEDIEE)
        .group_by(Tranche.convention_id).order_by(Tranche.convention_id)).all()
    items += [Item(label("Livraisons dont la réception est à confirmer", names[cid]), int(n),
                   "commune.convention", {"convention_id": cid}) for cid, n in shipped]
    unsplit = session.execute(
        sa.select(Convention.id, sa.func.count(sa.distinct(Pass.carnet_id)))
        .select_from(Pass).join(Convention, sa.and_(Convention.programme_id == Pass.programme_id,
                                                    Convention.commune_id == commune.id))
        .where(Pass.holder_id == commune.id, Pass.state == PassState.LIVRE)
        .group_by(Convention.id).order_by(Convention.id)).all()
    items += [Item(label("Carnets reçus à répartir entre les prescripteurs", names[cid]), int(n),
                   "commune.repartition", {"convention_id": cid}) for cid, n in unsplit]
    approvals = _count(session, sa.select(sa.func.count()).select_from(Tenant)
                       .join(OperateurProfile, OperateurProfile.structure_id == Tenant.id)
                       .where(Tenant.kind == TenantKind.STRUCTURE, Tenant.parent_id == commune.id,
                              Tenant.is_operateur.is_(True),
                              OperateurProfile.qualification == Qualification.QUALIFIE,
                              OperateurProfile.commune_approved_at.is_(None)))
    items.append(Item("Opérateurs qualifiés par #APTIC à approuver", approvals,
                      "commune.operateurs_page"))
    return _kept(items)


# ---------------------------------------------------------------- Hub

def hub_items(session: Session, hub: Tenant, today: dt.date) -> list[Item]:
    """Conventions still missing one of the Hub's two opinions (art. 4)."""
    given = (sa.select(sa.func.count(sa.distinct(HubOpinion.kind)))
             .where(HubOpinion.convention_id == Convention.id).scalar_subquery())
    awaiting = _count(session, sa.select(sa.func.count()).select_from(Convention).where(
        Convention.tenant_clause(hub), given < 2))
    return _kept([Item("Conventions en attente d'un avis du Hub", awaiting, "hub.opinions")])


ITEMS = {TenantKind.METROPOLE: metropole_items, TenantKind.MANDATAIRE: mandataire_items,
         TenantKind.COMMUNE: commune_items, TenantKind.HUB: hub_items}


def items_for(session: Session, tenant: Tenant, today: dt.date) -> list[Item]:
    return ITEMS[tenant.kind](session, tenant, today)
