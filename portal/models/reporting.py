"""Dashboards and reports (issue 7): exact rollups maintained by custody,
monthly reports (convention art. 9), retours d'expérience, follow-up
meetings, the Hub's facilitateurs and trainings.

``position_counts`` and ``flow_counts`` are written only by
``portal.domain.rollups`` (called by ``portal.domain.custody`` in the same
transaction as each move); ``0`` stands for "no commune" / "no holder" so
that the key can be a primary key on both databases.
"""
from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, UtcDateTime, str_enum, utcnow
from portal.models.issuance import Pass, PassState, Programme
from portal.models.ledger import Nature


class PositionCount(Base):
    """Pass per (programme, commune, state, holder): an exact mirror of
    ``SELECT … count(*) FROM passes GROUP BY …`` kept by custody."""

    __tablename__ = "position_counts"

    programme_id: Mapped[int] = mapped_column(sa.ForeignKey("programmes.id"), primary_key=True)
    commune_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)   # 0: none
    state: Mapped[PassState] = mapped_column(str_enum(PassState, "position_state"),
                                             primary_key=True)
    holder_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)    # 0: none
    count: Mapped[int] = mapped_column(sa.BigInteger, default=0)


# Carnets injectés / entamés per programme (portal.domain.dashboards.carnets):
# an index-only scan instead of visiting each pass row.
sa.Index("ix_passes_programme_state_carnet", Pass.programme_id, Pass.state, Pass.carnet_id)


class FlowCount(Base):
    """Ledger movements per (programme, commune, Paris day, nature): the
    pace of consumption, monthly reports and open data read it."""

    __tablename__ = "flow_counts"

    programme_id: Mapped[int] = mapped_column(sa.ForeignKey("programmes.id"), primary_key=True)
    commune_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)   # 0: none
    day: Mapped[dt.date] = mapped_column(sa.Date, primary_key=True)
    nature: Mapped[Nature] = mapped_column(str_enum(Nature, "flow_nature"), primary_key=True)
    count: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    # Net change of the pass "en circulation" in the commune (reddition balances).
    circulation: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class MonthlyReport(Base):
    """The monthly return of convention art. 9: per commune and in total.
    Generating a month again returns the stored report (idempotent);
    ``regenerate`` stores a new version explicitly, the old ones stay."""

    __tablename__ = "monthly_reports"
    __table_args__ = (sa.UniqueConstraint("programme_id", "month", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    programme_id: Mapped[int] = mapped_column(sa.ForeignKey("programmes.id"), index=True)
    month: Mapped[str] = mapped_column(sa.String(7))          # "2021-03"
    version: Mapped[int] = mapped_column(default=1)
    content: Mapped[dict] = mapped_column(sa.JSON)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    generated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    generated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    programme: Mapped[Programme] = relationship()

    @classmethod
    def tenant_clause(cls, tenant):
        """The commanditaire and issuer see their programmes' reports; a commune
        sees those of programmes it has a convention with (its own line and
        the total only — the view filters the lines)."""
        from portal.domain.permissions import TenantKind
        from portal.models.allocation import Convention
        if tenant.kind is TenantKind.COMMUNE:
            return cls.programme_id.in_(sa.select(Convention.programme_id).where(
                Convention.commune_id == tenant.id))
        return cls.programme_id.in_(sa.select(Programme.id).where(Programme.tenant_clause(tenant)))


class ExperienceStatus(str, enum.Enum):
    BROUILLON = "brouillon"
    TRANSMIS = "transmis"

    @property
    def label(self) -> str:
        return {"brouillon": "brouillon", "transmis": "transmis"}[self.value]


class ExperienceReport(Base):
    """Written retour d'expérience of a commune (convention art. 9), due on
    ``programme.experience_due_on``; no edit once transmitted."""

    __tablename__ = "experience_reports"
    __table_args__ = (sa.UniqueConstraint("convention_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    convention_id: Mapped[int] = mapped_column(sa.ForeignKey("conventions.id"))
    status: Mapped[ExperienceStatus] = mapped_column(
        str_enum(ExperienceStatus, "experience_status"), default=ExperienceStatus.BROUILLON)
    contributions: Mapped[str] = mapped_column(sa.Text, default="")
    difficulties: Mapped[str] = mapped_column(sa.Text, default="")
    feedback: Mapped[str] = mapped_column(sa.Text, default="")
    improvements: Mapped[str] = mapped_column(sa.Text, default="")
    extension_wish: Mapped[str] = mapped_column(sa.Text, default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    submitted_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    convention = relationship("Convention")

    @classmethod
    def tenant_clause(cls, tenant):
        from portal.models.allocation import Convention
        return cls.convention_id.in_(sa.select(Convention.id).where(
            Convention.tenant_clause(tenant)))


class FollowUpMeeting(Base):
    """A follow-up meeting of convention art. 9 (Feb–Mar, May–Jun, Sep–Oct)."""

    __tablename__ = "follow_up_meetings"

    id: Mapped[int] = mapped_column(primary_key=True)
    programme_id: Mapped[int] = mapped_column(sa.ForeignKey("programmes.id"), index=True)
    held_on: Mapped[dt.date] = mapped_column(sa.Date)
    topic: Mapped[str] = mapped_column(sa.String(300))
    # Commune ids whose référent attended.
    attendees: Mapped[list] = mapped_column(sa.JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    @classmethod
    def tenant_clause(cls, tenant):
        return cls.programme_id.in_(sa.select(Programme.id).where(Programme.tenant_clause(tenant)))


class Facilitateur(Base):
    """A facilitateur of a commune's network (art. 1): not a user, a line the
    Hub maintains."""

    __tablename__ = "facilitateurs"

    id: Mapped[int] = mapped_column(primary_key=True)
    hub_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    commune_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    organisation: Mapped[str] = mapped_column(sa.String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    @classmethod
    def tenant_clause(cls, tenant):
        return cls.hub_id == tenant.id


class Training(Base):
    """A training session given by the Hub (art. 4: capacity of the actors)."""

    __tablename__ = "trainings"

    id: Mapped[int] = mapped_column(primary_key=True)
    hub_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    held_on: Mapped[dt.date] = mapped_column(sa.Date)
    topic: Mapped[str] = mapped_column(sa.String(300))
    # Structure ids that attended.
    attendees: Mapped[list] = mapped_column(sa.JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    @classmethod
    def tenant_clause(cls, tenant):
        return cls.hub_id == tenant.id
