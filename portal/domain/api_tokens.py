"""API tokens of a structure (issue 6, point 4): created by the structure's
admin, revocable, scoped to that structure. Only a SHA-256 of the token is
stored; the token itself is shown once, at creation.

A token is 256 bits of randomness, so a plain (unsalted) SHA-256 is enough
to make the stored value useless to someone reading the database.
"""
from __future__ import annotations

import hashlib
import secrets

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.domain.errors import Conflict, InvalidInput
from portal.domain.ledger import Actor
from portal.domain.permissions import TenantKind
from portal.models import ApiToken, Tenant, utcnow

PREFIX = "pn_"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(session: Session, structure: Tenant, name: str, actor: Actor) -> tuple[ApiToken, str]:
    """Returns the row and the clear token (to show once)."""
    if structure.kind is not TenantKind.STRUCTURE or not structure.is_operateur:
        raise Conflict("Seul un opérateur peut créer un jeton d'API.")
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise InvalidInput("Nommez le jeton (100 caractères au plus), par exemple « Tablette "
                           "accueil ».", field="name")
    token = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(structure_id=structure.id, name=name, token_hash=digest(token),
                   hint=token[:10], created_by_id=actor.user_id)
    session.add(row)
    session.flush()
    return row, token


def revoke(session: Session, row: ApiToken) -> None:
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()


# The token's id and its structure: one entity to load on every API call.
_RESOLVE = (sa.select(ApiToken.id, Tenant).join(Tenant, Tenant.id == ApiToken.structure_id)
            .where(ApiToken.token_hash == sa.bindparam("token_hash"),
                   ApiToken.revoked_at.is_(None)))


def resolve(session: Session, token: str) -> tuple[int, Tenant] | None:
    """The live token's id and its structure, or None."""
    if not token or len(token) > 200 or not token.startswith(PREFIX):
        return None
    row = session.execute(_RESOLVE, {"token_hash": digest(token)}).first()
    return (row[0], row[1]) if row else None


REVOKED_SHOWN = 10


def tokens_of(session: Session, structure_id: int) -> list[ApiToken]:
    """Every live token, then the ``REVOKED_SHOWN`` most recently created
    revoked ones: hundreds of old revoked tokens must not slow the page."""
    of_structure = sa.select(ApiToken).where(ApiToken.structure_id == structure_id)
    live = session.execute(of_structure.where(ApiToken.revoked_at.is_(None))
                           .order_by(ApiToken.id.desc())).scalars().all()
    revoked = session.execute(of_structure.where(ApiToken.revoked_at.is_not(None))
                              .order_by(ApiToken.id.desc()).limit(REVOKED_SHOWN)).scalars().all()
    return list(live) + list(revoked)


def revoked_count(session: Session, structure_id: int) -> int:
    return session.execute(sa.select(sa.func.count()).select_from(ApiToken).where(
        ApiToken.structure_id == structure_id, ApiToken.revoked_at.is_not(None))).scalar_one()
