"""Invitations of members and the action journal (issue 13).

The journal (``journal_entries``) is append-only in the database itself:
triggers of migration 0011 refuse UPDATE and DELETE, as for the ledger.
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.domain.permissions import Role
from portal.models.base import Base, UtcDateTime, str_enum, utcnow


class Invitation(Base):
    """A single-use link inviting an e-mail address into a tenant with a role.

    Only the SHA-256 of the token is stored; resending replaces it (the old
    link stops working)."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    email: Mapped[str] = mapped_column(sa.String(254), index=True)
    role: Mapped[Role] = mapped_column(str_enum(Role, "invitation_role"))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    invited_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    accepted_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    accepted_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)

    tenant = relationship("Tenant")

    @classmethod
    def tenant_clause(cls, tenant):
        return cls.tenant_id == tenant.id

    def is_pending(self, now: dt.datetime) -> bool:
        return self.accepted_at is None and self.cancelled_at is None and self.expires_at > now

    def status_label(self, now: dt.datetime) -> str:
        if self.accepted_at is not None:
            return "Acceptée"
        if self.cancelled_at is not None:
            return "Annulée"
        if self.expires_at <= now:
            return "Expirée"
        return "En attente"


class JournalEntry(Base):
    """One administrative decision: when, who (user and the tenant they acted
    from), in which tenant's journal, on what, what changed, from which IP."""

    __tablename__ = "journal_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    action: Mapped[str] = mapped_column(sa.String(60))
    actor_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    actor_tenant_id: Mapped[int | None] = mapped_column(sa.ForeignKey("tenants.id"))
    tenant_id: Mapped[int | None] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    target: Mapped[str] = mapped_column(sa.String(60))
    target_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    before: Mapped[dict | None] = mapped_column(sa.JSON)
    after: Mapped[dict | None] = mapped_column(sa.JSON)
    ip: Mapped[str | None] = mapped_column(sa.String(45))

    actor_user = relationship("User", foreign_keys=[actor_user_id])
    actor_tenant = relationship("Tenant", foreign_keys=[actor_tenant_id])
    tenant = relationship("Tenant", foreign_keys=[tenant_id])
