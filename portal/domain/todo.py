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
from portal.domain.permissions import Permission, Role, TenantKind, permissions_of
from portal.models import (Anomaly, BankDetails, Convention, HabilitationRequest, HubOpinion,
                           OperateurProfile, Pass, PassOrder, Programme, RequestStatus,
                           Statement, Tenant, Tranche, TrancheStatus)
from portal.models.issuance import PassState
from portal.models.operateurs import Qualification, ReviewStatus
from portal.models.settlement import StatementStatus


@dataclass(frozen=True)
class Item:
    """One line of « À traiter ». ``permission``: what the action itself
    needs when opening the page is not enough (a Métropole agent sees the
    amorçage requests, only an administrator confirms them). ``waiting_for``:
    the line is another tenant's job (« En attente de la confirmation de la
    Métropole »): it is shown as information, never as an action."""
    label: str
    count: int
    endpoint: str | None = None
    kwargs: dict = field(default_factory=dict)
    permission: Permission | None = None
    waiting_for: str = ""


def _kept(items: list[Item]) -> list[Item]:
    return [i for i in items if i.count > 0]


def _count(session: Session, query) -> int:
    return int(session.execute(query).scalar() or 0)


def _per_programme(session: Session, query, label: str, endpoint: str, key: str = "programme_id",
                   several: bool = True, permission: Permission | None = None) -> list[Item]:
    """``query`` yields (programme id, programme name, count) rows."""
    rows = session.execute(query).all()
    return [Item(f"{label} ({name})" if several else label, int(n), endpoint, {key: pid},
                 permission=permission)
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
        "Demandes d'amorçage à confirmer", "metropole.allocation_page", several=several,
        permission=Permission.CONFIRM_TRANCHES)
    for programme in programmes:
        if today >= programme.request_window_end:
            continue   # no abondement any more (art. 5): no need to compute candidates
        eligible = sum(1 for c in allocation.abondement_candidates(session, programme, today)
                       if c.eligible)
        items.append(Item(f"Communes candidates à un abondement ({programme.name})" if several
                          else "Communes candidates à un abondement", eligible,
                          "metropole.allocation_page", {"programme_id": programme.id},
                          permission=Permission.CONFIRM_TRANCHES))
    items += _per_programme(
        session, sa.select(Programme.id, Programme.name, sa.func.count())
        .select_from(Convention).join(Programme, Programme.id == Convention.programme_id)
        .where(Programme.id.in_(ids), Convention.signed_by_metropole_on.is_(None))
        .group_by(Programme.id, Programme.name).order_by(Programme.id),
        "Conventions à signer par la Métropole", "metropole.allocation_page", several=several,
        permission=Permission.MANAGE_CONVENTIONS)
    items += _per_programme(
        session, sa.select(Programme.id, Programme.name, sa.func.count())
        .select_from(PassOrder).join(Programme, Programme.id == PassOrder.programme_id)
        .where(PassOrder.tenant_clause(metropole), PassOrder.payment_reference.is_(None))
        .group_by(Programme.id, Programme.name).order_by(Programme.id),
        "Commandes en attente du numéro de mandat", "metropole.programme", several=several,
        permission=Permission.MANAGE_PROGRAMMES)
    blocking = sum(1 for p in programmes
                   if p.blocking_proposed_at is not None and p.distribution_blocked_at is None)
    items.append(Item("Blocage de la distribution à valider (fin de validité)", blocking,
                      "metropole.validity_page", permission=Permission.END_OF_VALIDITY))
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
        Item("Demandes d'habilitation à examiner", requests, "mandataire.requests",
             permission=Permission.HABILITATE_AGENTS),
        Item("Tranches confirmées à expédier", to_ship, "mandataire.shipments",
             permission=Permission.SHIP_CARNETS),
        Item("Commandes à activer (numéro de mandat reçu)", to_activate,
             "mandataire.issuance_page", permission=Permission.ISSUE_PASS),
        Item("Opérateurs en attente de qualification", to_qualify, "mandataire.operateurs_page",
             permission=Permission.QUALIFY_OPERATEURS),
        Item("IBAN à vérifier", iban, "mandataire.operateurs_page",
             permission=Permission.QUALIFY_OPERATEURS),
        Item("Relevés de contre-paiement à valider",
             int(statements.get(StatementStatus.BROUILLON, 0)), "mandataire.statements_page",
             permission=Permission.CLOSE_MONTH),
        # Paid by a SEPA run (funds of the mandate, issue 17).
        Item("Relevés validés à payer", int(statements.get(StatementStatus.VALIDE, 0)),
             "mandataire.statements_page", permission=Permission.MANAGE_FUNDS),
        Item("Anomalies de scan à examiner", anomalies, "mandataire.anomalies_page",
             permission=Permission.QUALIFY_OPERATEURS),
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
                   {"convention_id": cid}, permission=Permission.DESIGNATE_REFERENT)
              for cid, name, signed, referent in conventions
              if signed is not None and referent is None]
    shipped = session.execute(
        sa.select(Tranche.convention_id, sa.func.count()).where(
            Tranche.tenant_clause(commune), Tranche.status == TrancheStatus.EXPEDIEE)
        .group_by(Tranche.convention_id).order_by(Tranche.convention_id)).all()
    items += [Item(label("Livraisons dont la réception est à confirmer", names[cid]), int(n),
                   "commune.convention", {"convention_id": cid},
                   permission=Permission.CONFIRM_RECEPTION) for cid, n in shipped]
    unsplit = session.execute(
        sa.select(Convention.id, sa.func.count(sa.distinct(Pass.carnet_id)))
        .select_from(Pass).join(Convention, sa.and_(Convention.programme_id == Pass.programme_id,
                                                    Convention.commune_id == commune.id))
        .where(Pass.holder_id == commune.id, Pass.state == PassState.LIVRE)
        .group_by(Convention.id).order_by(Convention.id)).all()
    items += [Item(label("Carnets reçus à répartir entre les prescripteurs", names[cid]), int(n),
                   "commune.repartition", {"convention_id": cid},
                   permission=Permission.SPLIT_CARNETS) for cid, n in unsplit]
    approvals = _count(session, sa.select(sa.func.count()).select_from(Tenant)
                       .join(OperateurProfile, OperateurProfile.structure_id == Tenant.id)
                       .where(Tenant.kind == TenantKind.STRUCTURE, Tenant.parent_id == commune.id,
                              Tenant.is_operateur.is_(True),
                              OperateurProfile.qualification == Qualification.QUALIFIE,
                              OperateurProfile.commune_approved_at.is_(None)))
    items.append(Item("Opérateurs qualifiés par #APTIC à approuver", approvals,
                      "commune.operateurs_page", permission=Permission.APPROVE_OPERATEURS))
    return _kept(items + _commune_waiting(session, commune, label))


def _of(name: str) -> str:
    """« du Hub Francil'IN », « de #APTIC »."""
    return f"du {name}" if name.startswith("Hub ") else de_name(name)


def de_name(name: str) -> str:
    return ("d'" if name[:1].upper() in "AEIOUYÉÈÊÂÎÔÛ" else "de ") + name


def _commune_waiting(session: Session, commune: Tenant, label) -> list[Item]:
    """What the commune waits for from others (art. 4–5 and délibération 2022):
    the Hub's opinions, the Métropole's confirmation of a tranche, #APTIC's
    shipment and its answer to habilitation requests."""
    items = []
    given = (sa.select(sa.func.count(sa.distinct(HubOpinion.kind)))
             .where(HubOpinion.convention_id == Convention.id).scalar_subquery())
    missing = session.execute(
        sa.select(Convention.id, Programme.name).join(Programme, Programme.id == Convention.programme_id)
        .where(Convention.tenant_clause(commune), Convention.signed_by_commune_on.is_not(None),
               given < 2, ~sa.exists().where(Tranche.convention_id == Convention.id))
        .order_by(Convention.id)).all()
    hubs = session.execute(sa.select(Tenant.name).where(Tenant.kind == TenantKind.HUB)
                           .order_by(Tenant.id)).scalars().all()
    hub = _of(hubs[0]) if len(hubs) == 1 else "du Hub"
    items += [Item(label("Avis préalables à l'amorçage (art. 4)", name), 1,
                   waiting_for=f"En attente de l'avis {hub}") for _cid, name in missing]
    tranches = session.execute(
        sa.select(Tranche.status, Programme.name, Tenant.name, sa.func.count())
        .join(Convention, Convention.id == Tranche.convention_id)
        .join(Programme, Programme.id == Convention.programme_id)
        .join(Tenant, Tenant.id == Programme.issuer_id)
        .where(Tranche.tenant_clause(commune),
               Tranche.status.in_((TrancheStatus.DEMANDEE, TrancheStatus.CONFIRMEE)))
        .group_by(Tranche.status, Programme.name, Tenant.name)
        .order_by(Programme.name, Tranche.status)).all()
    for status, name, issuer, n in tranches:
        if status is TrancheStatus.DEMANDEE:
            items.append(Item(label("Tranche demandée", name), int(n),
                              waiting_for="En attente de la confirmation de la Métropole"))
        else:
            items.append(Item(label("Tranche confirmée par la Métropole", name), int(n),
                              waiting_for=f"En attente de l'expédition par {issuer}"))
    requests = _count(session, sa.select(sa.func.count()).select_from(HabilitationRequest).where(
        HabilitationRequest.tenant_clause(commune),
        HabilitationRequest.status == RequestStatus.EN_ATTENTE))
    items.append(Item("Demandes d'habilitation de prescripteurs envoyées", requests,
                      waiting_for="En attente de l'examen par #APTIC"))
    return items


# ---------------------------------------------------------------- Hub

def hub_items(session: Session, hub: Tenant, today: dt.date) -> list[Item]:
    """Conventions still missing one of the Hub's two opinions (art. 4)."""
    given = (sa.select(sa.func.count(sa.distinct(HubOpinion.kind)))
             .where(HubOpinion.convention_id == Convention.id).scalar_subquery())
    awaiting = _count(session, sa.select(sa.func.count()).select_from(Convention).where(
        Convention.tenant_clause(hub), given < 2))
    return _kept([Item("Conventions en attente d'un avis du Hub", awaiting, "hub.opinions",
                       permission=Permission.GIVE_HUB_OPINION)])


ITEMS = {TenantKind.METROPOLE: metropole_items, TenantKind.MANDATAIRE: mandataire_items,
         TenantKind.COMMUNE: commune_items, TenantKind.HUB: hub_items}


def items_for(session: Session, tenant: Tenant, today: dt.date) -> list[Item]:
    return ITEMS[tenant.kind](session, tenant, today)


@dataclass(frozen=True)
class Waiting:
    item: Item
    who: str


@dataclass
class Todo:
    """The home page's « À traiter » for one member: the lines this member can
    act on (tiles with a link), and those waiting for someone else, saying who."""
    actions: list[Item] = field(default_factory=list)
    waiting: list[Waiting] = field(default_factory=list)


def who_may(permission: Permission, kind: TenantKind) -> str:
    """« En attente d'un administrateur de la Métropole »: the roles of this
    kind of tenant that hold ``permission`` ("" when none does)."""
    roles = [role for role in Role if role.tenant_kind is kind
             and permission in permissions_of(role)]
    if not roles:
        return ""
    return "En attente " + " ou ".join(
        "d'un " + role.label[:1].lower() + role.label[1:] for role in roles)


def sort_for_member(items: list[Item], kind: TenantKind, can_open, may) -> Todo:
    """Split ``items`` for a member: ``can_open(endpoint)`` tells whether the
    member may open the line's page, ``may(permission)`` whether the member
    holds a permission. A line the member cannot act on is shown as waiting
    for the roles that can (or hidden when no role of this tenant can)."""
    todo = Todo()
    for item in items:
        if item.waiting_for:
            todo.waiting.append(Waiting(item, item.waiting_for))
        elif can_open(item.endpoint) and (item.permission is None or may(item.permission)):
            todo.actions.append(item)
        elif item.permission is not None and (who := who_may(item.permission, kind)):
            todo.waiting.append(Waiting(item, who))
    return todo
