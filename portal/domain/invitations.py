"""Invitations into a tenant (issue 13 items 1 and 5).

An administrator invites an e-mail address with a role that exists for the
tenant's kind. The invitation is a single-use link valid 7 days; only the
SHA-256 of its token is stored. Resending issues a new token (the old link
stops working) and a new 7-day validity; cancelling kills the link.

Accepting: a new address sets its name and password; an address that
already has an account signs in with its own password and simply gains the
membership. The link cannot be used by the account of another address.
Nothing the inviter sees, and nothing in the e-mail, tells whether the
address already had an account (the same invitation either way).
"""
from __future__ import annotations

from typing import cast
import datetime as dt
import hashlib
import secrets

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.orm import Session

from portal.domain import accounts, journal
from portal.domain.errors import Conflict, Gone, InvalidInput, NotAllowed
from portal.domain.permissions import Role
from portal.models import Invitation, Membership, Tenant, User, utcnow

VALIDITY = dt.timedelta(days=7)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def clean_email(text: str | None, field: str = "email") -> str:
    """A syntactically valid address, lower-cased (no DNS look-up)."""
    raw = (text or "").strip()
    if not raw:
        raise InvalidInput("L'adresse électronique est obligatoire.", field=field)
    if len(raw) > 254:
        raise InvalidInput("L'adresse électronique est trop longue.", field=field)
    try:
        valid = validate_email(raw, check_deliverability=False)
    except EmailNotValidError:
        raise InvalidInput(f"« {raw[:80]} » n'est pas une adresse électronique valide.",
                           field=field) from None
    return accounts.normalise_email(valid.normalized)


def check_role(tenant: Tenant, role) -> Role:
    """A role that exists for this kind of tenant (permissions.ROLE_KIND)."""
    try:
        role = Role(role)
    except ValueError:
        raise InvalidInput("Rôle inconnu.", field="role") from None
    if role.tenant_kind is not tenant.kind:
        raise InvalidInput(f"Le rôle « {role.label} » n'existe pas pour ce type d'organisation.",
                           field="role")
    return role


def pending_for(session: Session, tenant: Tenant, email: str, now: dt.datetime):
    return session.execute(sa.select(Invitation).where(
        Invitation.tenant_id == tenant.id, Invitation.email == email,
        Invitation.accepted_at.is_(None), Invitation.cancelled_at.is_(None),
        Invitation.expires_at > now)).scalars().first()


def is_member(session: Session, tenant: Tenant, email: str) -> bool:
    return session.execute(
        sa.select(sa.func.count()).select_from(Membership).join(User)
        .where(Membership.tenant_id == tenant.id, User.email == email)).scalar_one() > 0


def check_invitable(session: Session, tenant: Tenant, email: str, now: dt.datetime) -> None:
    if is_member(session, tenant, email):
        raise InvalidInput(f"{email} est déjà membre de {tenant.name}.", field="email")
    if pending_for(session, tenant, email, now) is not None:
        raise InvalidInput(f"Une invitation est déjà en attente pour {email} : "
                           "renvoyez-la depuis la liste des invitations.", field="email")


def invite(session: Session, *, email: str, tenant: Tenant, role, invited_by,
           now: dt.datetime | None = None) -> tuple[Invitation, str]:
    """Create the invitation; returns it with the raw single-use token (to
    put in the e-mail, never stored). Writes the journal; sends nothing."""
    now = now or utcnow()
    email = clean_email(email)
    role = check_role(tenant, role)
    check_invitable(session, tenant, email, now)
    token = secrets.token_urlsafe(32)
    invitation = Invitation(tenant_id=tenant.id, email=email, role=role,
                            token_hash=_digest(token),
                            invited_by_id=getattr(invited_by, "user_id", None),
                            created_at=now, sent_at=now, expires_at=now + VALIDITY)
    session.add(invitation)
    session.flush()
    journal.record(session, action="invitation.sent", actor=invited_by, tenant_id=tenant.id,
                   target="invitation", target_id=invitation.id,
                   after={"email": email, "rôle": role.label})
    return invitation, token


def resend(session: Session, invitation: Invitation, *, actor,
           now: dt.datetime | None = None) -> str:
    """A new token and a new 7-day validity; the previous link stops working."""
    now = now or utcnow()
    if invitation.accepted_at is not None:
        raise Conflict("Cette invitation a déjà été acceptée.")
    if invitation.cancelled_at is not None:
        raise Conflict("Cette invitation a été annulée : invitez à nouveau la personne.")
    token = secrets.token_urlsafe(32)
    invitation.token_hash = _digest(token)
    invitation.sent_at = now
    invitation.expires_at = now + VALIDITY
    journal.record(session, action="invitation.resent", actor=actor,
                   tenant_id=invitation.tenant_id, target="invitation",
                   target_id=invitation.id, after={"email": invitation.email})
    return token


def cancel(session: Session, invitation: Invitation, *, actor,
           now: dt.datetime | None = None) -> None:
    now = now or utcnow()
    if invitation.accepted_at is not None:
        raise Conflict("Cette invitation a déjà été acceptée : retirez le membre à la place.")
    if invitation.cancelled_at is not None:
        return
    invitation.cancelled_at = now
    journal.record(session, action="invitation.cancelled", actor=actor,
                   tenant_id=invitation.tenant_id, target="invitation",
                   target_id=invitation.id, before={"email": invitation.email})


def find(session: Session, token: str, now: dt.datetime | None = None) -> Invitation:
    """The pending invitation of this link, or a French 410."""
    now = now or utcnow()
    gone = Gone("Ce lien d'invitation n'est pas valable : il a déjà servi, a été annulé "
                "ou a expiré (7 jours). Demandez une nouvelle invitation à l'administrateur.")
    if not token or len(token) > 100:
        raise gone
    invitation = session.execute(sa.select(Invitation).where(
        Invitation.token_hash == _digest(token))).scalar_one_or_none()
    if invitation is None or not invitation.is_pending(now):
        raise gone
    return invitation


def _claim(session: Session, invitation: Invitation, user: User, now: dt.datetime) -> Membership:
    """Mark the invitation used (conditional UPDATE: two tabs cannot both
    use one link) and add the membership."""
    used = cast(sa.CursorResult, session.execute(
        sa.update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.accepted_at.is_(None),
               Invitation.cancelled_at.is_(None))
        .values(accepted_at=now, accepted_user_id=user.id)
        .execution_options(synchronize_session=False))).rowcount
    if used != 1:
        raise Gone("Ce lien d'invitation a déjà servi.")
    session.refresh(invitation)
    tenant = session.get_one(Tenant, invitation.tenant_id)
    existing = session.execute(sa.select(Membership).where(
        Membership.user_id == user.id, Membership.tenant_id == tenant.id)).scalar_one_or_none()
    if existing is not None:
        membership = existing
    else:
        membership = accounts.add_membership(session, user, tenant, invitation.role)
    from portal.domain.ledger import Actor
    journal.record(session, action="invitation.accepted", actor=Actor(user.id, tenant.id),
                   tenant_id=tenant.id, target="membre", target_id=user.id,
                   after={"email": user.email, "rôle": invitation.role.label})
    return membership


def account_exists(session: Session, invitation: Invitation) -> bool:
    return accounts.find_user(session, invitation.email) is not None


def accept_new_account(session: Session, invitation: Invitation, *, full_name: str,
                       password: str, confirm: str, now: dt.datetime | None = None) -> User:
    """First visit of a new address: name and password, then the membership."""
    now = now or utcnow()
    if account_exists(session, invitation):
        raise Conflict("Un compte existe déjà pour cette adresse : connectez-vous.")
    full_name = (full_name or "").strip()
    if not full_name:
        raise InvalidInput("Le nom est obligatoire.", field="full_name")
    if len(full_name) > 200:
        raise InvalidInput("Le nom dépasse 200 caractères.", field="full_name")
    if password != confirm:
        raise InvalidInput("Les deux saisies du mot de passe diffèrent.", field="confirm_password")
    user = accounts.create_user(session, invitation.email, full_name, password)
    _claim(session, invitation, user, now)
    return user


def accept_existing_account(session: Session, invitation: Invitation, *, user: User,
                            now: dt.datetime | None = None) -> Membership:
    """An existing account (signed in, or whose password was just checked)
    gains the membership; the account of another address cannot."""
    now = now or utcnow()
    if accounts.normalise_email(user.email) != invitation.email:
        raise NotAllowed("Cette invitation a été envoyée à une autre adresse électronique : "
                         "elle ne peut pas être utilisée avec votre compte.")
    return _claim(session, invitation, user, now)


def invitations_of(session: Session, tenant: Tenant, *, limit: int = 200) -> list[Invitation]:
    return list(session.execute(
        sa.select(Invitation).where(Invitation.tenant_id == tenant.id,
                                    Invitation.accepted_at.is_(None))
        .order_by(Invitation.created_at.desc()).limit(limit)).scalars())
