"""User accounts: password hashing and checks, sign-in sessions, memberships."""
from __future__ import annotations

from typing import cast
import secrets

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from portal.domain.errors import InvalidInput
from portal.domain.permissions import Role
from portal.models import AuthSession, Membership, Tenant, User, utcnow  # noqa: F401

MIN_PASSWORD_LENGTH = 12
# A real hash of a random password, checked when the e-mail is unknown so
# that the response time does not tell which accounts exist.
_DUMMY_HASH = generate_password_hash(secrets.token_hex(16), method="scrypt")


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


# Tests lower the scrypt cost through this setting; production keeps the default.
HASH_METHOD = "scrypt"


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=HASH_METHOD)


def check_password_policy(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"Le mot de passe doit comporter au moins {MIN_PASSWORD_LENGTH} caractères.",
            field="password")
    if len(password) > 256:
        raise InvalidInput("Le mot de passe est trop long.", field="password")


def find_user(session: Session, email: str) -> User | None:
    email = normalise_email(email)
    if not email or len(email) > 254:
        return None
    return session.execute(sa.select(User).where(User.email == email)).scalar_one_or_none()


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The active user with this e-mail and password, else None (same time either way)."""
    user = find_user(session, email)
    if user is None or not user.is_active:
        check_password_hash(_DUMMY_HASH, password or "")
        return None
    if not check_password_hash(user.password_hash, password or ""):
        return None
    return user


def create_user(session: Session, email: str, full_name: str, password: str | None,
                phone: str = "", *, password_hash: str | None = None) -> User:
    """Create an account; ``password_hash`` lets bulk loaders hash once."""
    email = normalise_email(email)
    if "@" not in email:
        raise InvalidInput("Adresse électronique invalide.", field="email")
    if find_user(session, email) is not None:
        raise InvalidInput("Un compte existe déjà avec cette adresse.", field="email")
    if password_hash is None:
        password = password or ""
        check_password_policy(password)
        password_hash = hash_password(password)
    user = User(email=email, full_name=full_name, phone=phone, password_hash=password_hash)
    session.add(user)
    session.flush()
    return user


def add_membership(session: Session, user: User, tenant: Tenant, role: Role) -> Membership:
    role = Role(role)
    if role.tenant_kind is not tenant.kind:
        raise InvalidInput(f"Le rôle « {role.label} » n'existe pas pour ce type d'organisation.")
    membership = Membership(user=user, tenant=tenant, role=role)
    session.add(membership)
    session.flush()
    return membership


def open_session(session: Session, user: User, user_agent: str = "") -> AuthSession:
    """A sign-in session; the password (or invitation) was just given, so it
    counts as a fresh confirmation for sensitive actions."""
    now = utcnow()
    auth = AuthSession(id=secrets.token_urlsafe(32), user_id=user.id,
                       user_agent=(user_agent or "")[:200], created_at=now,
                       last_seen_at=now, password_confirmed_at=now)
    session.add(auth)
    session.flush()
    return auth


def purge_expired_sessions(session: Session, *, idle, absolute, now=None) -> int:
    """Delete the sign-in sessions past their inactivity or absolute limit."""
    now = now or utcnow()
    return cast(sa.CursorResult, session.execute(sa.delete(AuthSession).where(sa.or_(
        AuthSession.last_seen_at <= now - idle,
        AuthSession.created_at <= now - absolute)))).rowcount


def confirm_password(session: Session, session_id: str, now=None) -> None:
    session.execute(sa.update(AuthSession).where(AuthSession.id == session_id)
                    .values(password_confirmed_at=now or utcnow()))


def close_session(session: Session, session_id: str) -> None:
    session.execute(sa.delete(AuthSession).where(AuthSession.id == session_id))


def change_password(session: Session, user: User, new_password: str) -> None:
    """Set a new password and sign out every browser of this user."""
    check_password_policy(new_password)
    user.password_hash = hash_password(new_password)
    user.password_changed_at = utcnow()
    session.execute(sa.delete(AuthSession).where(AuthSession.user_id == user.id))


def memberships_of(session: Session, user_id: int) -> list[Membership]:
    return list(session.execute(
        sa.select(Membership).join(Tenant).where(Membership.user_id == user_id)
        .options(sa.orm.contains_eager(Membership.tenant))
        .order_by(Tenant.kind, Tenant.name)).scalars())
