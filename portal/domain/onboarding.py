"""First start of a real deployment (issue 13 item 1).

An empty production database has no tenant and no user. ``setup`` creates
the issuer tenant (#APTIC, émetteur and mandataire: délibération 2022) and
invites its first administrator, who then sets a password and enrols the
second factor. Once an #APTIC administrator exists, setup is refused:
further people are invited from the portal.
"""
from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.domain import invitations, journal
from portal.domain.errors import Conflict, InvalidInput
from portal.domain.permissions import Role, TenantKind
from portal.models import Invitation, Membership, Tenant, utcnow

SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?")


def administrator_exists(session: Session) -> bool:
    return session.execute(sa.select(sa.func.count()).select_from(Membership).where(
        Membership.role == Role.APTIC_ADMIN)).scalar_one() > 0


def setup_issuer(session: Session, *, email: str, tenant_name: str = "#APTIC",
                 slug: str = "aptic", now=None) -> tuple[Invitation, str]:
    """Create (or reuse) the issuer tenant and invite its first administrator.

    Running it again before the link is used cancels the previous link and
    prints a new one; once an administrator exists it is refused."""
    now = now or utcnow()
    if administrator_exists(session):
        raise Conflict("Un administrateur #APTIC existe déjà : le premier démarrage est fait. "
                       "Invitez les autres personnes depuis le portail (page « Membres »).")
    tenant_name = (tenant_name or "").strip()
    if not tenant_name or len(tenant_name) > 200:
        raise InvalidInput("Le nom de l'émetteur est obligatoire (200 caractères au plus).",
                           field="tenant_name")
    if not SLUG.fullmatch(slug or ""):
        raise InvalidInput("L'identifiant d'URL doit être en minuscules, chiffres et tirets.",
                           field="slug")
    email = invitations.clean_email(email)
    tenant = session.execute(sa.select(Tenant).where(
        Tenant.kind == TenantKind.MANDATAIRE)).scalars().first()
    if tenant is None:
        if session.execute(sa.select(Tenant.id).where(Tenant.slug == slug)).first():
            raise InvalidInput(f"L'identifiant « {slug} » est déjà pris.", field="slug")
        tenant = Tenant(kind=TenantKind.MANDATAIRE, slug=slug, name=tenant_name)
        session.add(tenant)
        session.flush()
        journal.record(session, action="setup", actor=None, tenant_id=tenant.id,
                       target="organisation", target_id=tenant.id,
                       after={"nom": tenant.name, "type": tenant.kind.label})
    for pending in session.execute(sa.select(Invitation).where(
            Invitation.tenant_id == tenant.id, Invitation.role == Role.APTIC_ADMIN,
            Invitation.accepted_at.is_(None), Invitation.cancelled_at.is_(None))).scalars():
        invitations.cancel(session, pending, actor=None, now=now)
    return invitations.invite(session, email=email, tenant=tenant, role=Role.APTIC_ADMIN,
                              invited_by=None, now=now)
