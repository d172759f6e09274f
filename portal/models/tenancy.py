"""Tenants (organisations), users, memberships and login sessions."""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.domain.permissions import Permission, Role, TenantKind, permissions_of
from portal.models.base import Base, UtcDateTime, str_enum, utcnow


class Tenant(Base):
    """An organisation: the Métropole, a commune, the Hub, #APTIC or a structure."""

    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[TenantKind] = mapped_column(str_enum(TenantKind, "tenant_kind"), index=True)
    slug: Mapped[str] = mapped_column(sa.String(80), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    # A structure belongs to the commune where it works.
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    address_line: Mapped[str] = mapped_column(sa.String(200), default="")
    postal_code: Mapped[str] = mapped_column(sa.String(10), default="")
    city: Mapped[str] = mapped_column(sa.String(120), default="")
    insee_code: Mapped[str | None] = mapped_column(sa.String(5))
    siret: Mapped[str | None] = mapped_column(sa.String(14), unique=True)
    is_prescripteur: Mapped[bool] = mapped_column(default=False)
    is_operateur: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    parent: Mapped[Tenant | None] = relationship(remote_side=[id])

    @property
    def structure_roles_label(self) -> str:
        parts = [label for flag, label in ((self.is_prescripteur, "prescripteur"),
                                           (self.is_operateur, "opérateur")) if flag]
        return " et ".join(parts)

    @property
    def full_address(self) -> str:
        return ", ".join(p for p in (self.address_line,
                                     f"{self.postal_code} {self.city}".strip()) if p)

    def __repr__(self) -> str:
        return f"<Tenant {self.kind.value}:{self.slug}>"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    full_name: Mapped[str] = mapped_column(sa.String(200))
    phone: Mapped[str] = mapped_column(sa.String(30), default="")
    password_hash: Mapped[str] = mapped_column(sa.String(256))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    password_changed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="user", cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return f"<User {self.email}>"


class Membership(Base):
    """A user's role in one tenant. A user may belong to several tenants."""

    __tablename__ = "memberships"
    __table_args__ = (sa.UniqueConstraint("user_id", "tenant_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    role: Mapped[Role] = mapped_column(str_enum(Role, "membership_role"))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    user: Mapped[User] = relationship(back_populates="memberships")
    tenant: Mapped[Tenant] = relationship()

    @property
    def permissions(self) -> frozenset[Permission]:
        return permissions_of(self.role)

    @classmethod
    def tenant_clause(cls, tenant):
        return cls.tenant_id == tenant.id


class AuthSession(Base):
    """One signed-in browser. Deleting the row signs that browser out, even if
    somebody kept a copy of its cookie (logout, password change)."""

    __tablename__ = "auth_sessions"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    user_agent: Mapped[str] = mapped_column(sa.String(200), default="")
    # Issue 13: inactivity expiry and the last time the password was typed
    # (sensitive actions ask for it again after a few minutes).
    last_seen_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    password_confirmed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    user: Mapped[User] = relationship()
