"""The action journal (issue 13 « Journal des actions »).

Every administrative decision is one append-only entry: when, who (user and
the tenant they acted from), in which tenant's journal, on what, what
changed (before → after) and from which IP address. The database refuses
UPDATE and DELETE on ``journal_entries`` (triggers of migration 0011), as it
does for the custody ledger (délibération 2022: traceability of public money).

Who reads what (issue 13 item 6): a tenant's administrators read their own
tenant's journal; the commanditaire (Métropole) also reads the journal of
the communes of its programmes' perimeter and of their structures; #APTIC
(issuer and mandataire) reads every journal.
"""
from __future__ import annotations

import contextvars
import datetime as dt
import io
from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.domain import spreadsheet
from portal.domain.permissions import TenantKind
from portal.models import JournalEntry, Tenant, User, utcnow

# Set by the web layer for the duration of a request (this module never
# imports Flask): entries recorded by domain functions carry the client IP.
REQUEST_IP: contextvars.ContextVar[str | None] = contextvars.ContextVar("journal_ip",
                                                                        default=None)

# French labels of the actions (the journal page and its CSV export).
ACTIONS = {
    "setup": "Premier démarrage (émetteur et premier administrateur)",
    "invitation.sent": "Invitation envoyée",
    "invitation.resent": "Invitation renvoyée",
    "invitation.accepted": "Invitation acceptée",
    "invitation.cancelled": "Invitation annulée",
    "member.role_changed": "Rôle modifié",
    "member.removed": "Membre retiré",
    "signin.failed": "Échec de connexion",
    "signin.locked": "Connexion bloquée (trop de tentatives)",
    "second_factor.reset": "Double authentification réinitialisée",
    "habilitation.granted": "Habilitation accordée",
    "habilitation.refused": "Demande d'habilitation refusée",
    "habilitation.revoked": "Habilitation retirée",
    "qualification.decided": "Décision de qualification",
    "operateur.commune_decision": "Décision de la commune sur un lieu",
    "iban.reviewed": "Coordonnées bancaires examinées",
    "statement.validated": "Relevé validé",
    "statement.paid": "Relevé payé",
    "statement.corrected": "Relevé corrigé",
    "tenant.created": "Organisation créée",
    "tenant.changed": "Organisation modifiée",
    "programme.created": "Programme créé",
    "programme.changed": "Programme modifié",
}


def _plain(value):
    """JSON-safe copy of a before/after value (dates, enums, decimals)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if hasattr(value, "value") and not isinstance(value, (int, float, str, bool)):
        return _plain(value.value)
    if value is None or isinstance(value, (int, float, str, bool)):
        return value
    return str(value)


def record(session: Session, *, action: str, actor, tenant_id: int | None, target: str,
           target_id: int | None = None, before: dict | None = None,
           after: dict | None = None, ip: str | None = None) -> JournalEntry:
    """Append one entry in the caller's transaction (it is written, or not,
    together with the decision it describes). ``actor`` is a
    ``portal.domain.ledger.Actor`` or None (command line, system)."""
    entry = JournalEntry(
        created_at=utcnow(), action=action[:60],
        actor_user_id=getattr(actor, "user_id", None),
        actor_tenant_id=getattr(actor, "tenant_id", None),
        tenant_id=tenant_id, target=target[:60], target_id=target_id,
        before=_plain(before) if before is not None else None,
        after=_plain(after) if after is not None else None,
        ip=(ip or REQUEST_IP.get() or None),
    )
    if entry.ip:
        entry.ip = entry.ip[:45]
    session.add(entry)
    session.flush()
    return entry


def action_label(action: str) -> str:
    return ACTIONS.get(action, action)


def overseen_tenant_ids(session: Session, tenant: Tenant) -> list[int] | None:
    """The tenants whose journal ``tenant`` reads; None means every tenant.

    #APTIC is the issuer and mandataire of every programme (délibération
    2022); the commanditaire oversees the communes of its programmes'
    perimeter and their structures (convention MGP–commune art. 9); every
    other tenant reads its own journal only."""
    if tenant.kind is TenantKind.MANDATAIRE:
        return None
    ids = {tenant.id}
    if tenant.kind is TenantKind.METROPOLE:
        from portal.models import Programme, ProgrammePerimeter
        members = set(session.execute(
            sa.select(ProgrammePerimeter.tenant_id)
            .join(Programme, Programme.id == ProgrammePerimeter.programme_id)
            .where(Programme.commanditaire_id == tenant.id)).scalars())
        structures = set(session.execute(
            sa.select(Tenant.id).where(Tenant.parent_id.in_(members))).scalars()) if members else set()
        ids |= members | structures
    return sorted(ids)


def entries_for(session: Session, tenant: Tenant, *, limit: int | None = 500,
                action: str | None = None) -> list[JournalEntry]:
    """The journal ``tenant`` may read, newest first."""
    query = (sa.select(JournalEntry).order_by(JournalEntry.created_at.desc(),
                                              JournalEntry.id.desc())
             .options(sa.orm.selectinload(JournalEntry.actor_user),
                      sa.orm.selectinload(JournalEntry.actor_tenant),
                      sa.orm.selectinload(JournalEntry.tenant)))
    ids = overseen_tenant_ids(session, tenant)
    if ids is not None:
        query = query.where(JournalEntry.tenant_id.in_(ids))
    if action:
        query = query.where(JournalEntry.action == action)
    if limit:
        query = query.limit(limit)
    return list(session.execute(query).scalars())


def objects(session: Session, entries: list[JournalEntry]) -> dict[int, str]:
    """Entry id → what it is about, as people name it (« habilitation de
    Camille Martin pour le CCAS de Bondy (mandat …) », « relevé de la
    Médiathèque de Bondy, mars 2021 »), never a database id (issue 15 item 3).
    One query per kind of object."""
    from portal.domain import labels, references
    from portal.formatting import format_month
    from portal.models import (BankDetails, Habilitation, HabilitationRequest, Invitation,
                               Programme, Statement)
    wanted: dict[str, set[int]] = defaultdict(set)
    for e in entries:
        if e.target_id is not None:
            wanted[e.target].add(e.target_id)

    def load(model, *targets: str) -> dict:
        ids = set().union(*(wanted.get(t, set()) for t in targets))
        if not ids:
            return {}
        return {o.id: o for o in session.execute(
            sa.select(model).where(model.id.in_(ids))).scalars()}

    users = load(User, "membre", "compte")
    tenants = load(Tenant, "tenant", "organisation", "lieu")
    programmes = load(Programme, "programme")
    habilitations = load(Habilitation, "habilitation")
    statements = load(Statement, "relevé")
    invitations = load(Invitation, "invitation")
    requests = load(HabilitationRequest, "demande d'habilitation")
    bank_details = load(BankDetails, "coordonnées bancaires")

    def describe(e: JournalEntry) -> str | None:
        i, what = e.target_id, labels.journal_target(e.target)
        if i is None:
            return None
        if i in users and e.target in ("membre", "compte"):
            return f"{what} {users[i].full_name} ({users[i].email})"
        if i in tenants and e.target in ("tenant", "organisation", "lieu"):
            return f"{what} {tenants[i].name}"
        if i in programmes and e.target == "programme":
            return f"{what} {programmes[i].name} ({programmes[i].prefix})"
        if i in habilitations and e.target == "habilitation":
            return references.habilitation(habilitations[i])
        if i in statements and e.target == "relevé":
            s = statements[i]
            return f"relevé de {s.structure.name}, {format_month(s.period)}"
        if i in invitations and e.target == "invitation":
            return f"invitation de {invitations[i].email}"
        if i in requests and e.target == "demande d'habilitation":
            r = requests[i]
            return f"demande d'habilitation de {r.user.full_name} pour {r.structure.name}"
        if i in bank_details and e.target == "coordonnées bancaires":
            return f"coordonnées bancaires de {bank_details[i].structure.name}"
        return None

    def capital(text: str) -> str:
        return text[:1].upper() + text[1:]

    return {e.id: capital(describe(e) or labels.journal_target(e.target)) for e in entries}


def change(values: dict | None) -> str:
    """Recorded values as people read them: field names and values in French."""
    from portal.domain import labels
    if not values:
        return ""
    return ", ".join(f"{labels.field(k)} : {labels.value(k, v)}" for k, v in values.items())


def to_csv(session: Session, entries: list[JournalEntry]) -> str:
    """CSV for French spreadsheets (``;`` and a BOM); cells that a spreadsheet
    would run as a formula are prefixed with ``'``."""
    users = {u.id: u for u in session.execute(sa.select(User).where(
        User.id.in_({e.actor_user_id for e in entries if e.actor_user_id}))).scalars()}
    tenant_ids = {e.tenant_id for e in entries} | {e.actor_tenant_id for e in entries}
    tenants = {t.id: t for t in session.execute(sa.select(Tenant).where(
        Tenant.id.in_({i for i in tenant_ids if i}))).scalars()}
    out = io.StringIO()
    out.write("\ufeff")
    writer = spreadsheet.csv_writer(out)   # formula injection neutralised
    writer.writerow(["Date (UTC)", "Action", "Auteur", "Organisation de l'auteur",
                     "Journal de", "Objet", "Identifiant technique de l'objet", "Avant", "Après",
                     "Adresse IP"])
    described = objects(session, entries)

    def safe(text) -> str:
        text = "" if text is None else str(text)
        return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text

    for e in entries:
        user = users.get(e.actor_user_id) if e.actor_user_id is not None else None
        writer.writerow([safe(x) for x in (
            e.created_at.strftime("%Y-%m-%d %H:%M:%S"), action_label(e.action),
            user.email if user else "système",
            tenants[e.actor_tenant_id].name if e.actor_tenant_id in tenants else "",
            tenants[e.tenant_id].name if e.tenant_id in tenants else "",
            described[e.id], e.target_id if e.target_id is not None else "",
            change(e.before), change(e.after), e.ip or "")])
    return out.getvalue()
