"""Monthly contre-paiement statements of opérateurs (issue 6, point 8)."""
from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, UtcDateTime, str_enum, utcnow

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


class StatementStatus(str, enum.Enum):
    BROUILLON = "brouillon"
    VALIDE = "valide"
    PAYE = "paye"

    @property
    def label(self) -> str:
        return {"brouillon": "brouillon", "valide": "validé", "paye": "payé"}[self.value]


class Statement(Base):
    """One statement per opérateur and month."""

    __tablename__ = "statements"
    __table_args__ = (sa.UniqueConstraint("structure_id", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    structure_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    period: Mapped[str] = mapped_column(sa.String(7))            # "2026-10"
    status: Mapped[StatementStatus] = mapped_column(
        str_enum(StatementStatus, "statement_status"), default=StatementStatus.BROUILLON)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    validated_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    validated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    paid_on: Mapped[dt.date | None] = mapped_column(sa.Date)
    bank_reference: Mapped[str] = mapped_column(sa.String(100), default="")
    paid_recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    structure = relationship("Tenant")
    lines: Mapped[list[StatementLine]] = relationship(
        back_populates="statement", order_by="StatementLine.id")

    @property
    def total_cents(self) -> int:
        return sum(line.amount_cents for line in self.lines)

    @classmethod
    def tenant_clause(cls, tenant):
        """The structure sees its own; #APTIC (mandataire) sees every one."""
        return sa.true() if tenant.kind.value == "mandataire" else cls.structure_id == tenant.id


class StatementLine(Base):
    """A scanned pass (scan_id set) or a correction (scan_id empty, amount
    may be negative). Validated lines are never edited."""

    __tablename__ = "statement_lines"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    statement_id: Mapped[int] = mapped_column(sa.ForeignKey("statements.id"), index=True)
    scan_id: Mapped[int | None] = mapped_column(BigId, sa.ForeignKey("scans.id"), unique=True)
    pass_id: Mapped[int | None] = mapped_column(BigId, sa.ForeignKey("passes.id"))
    programme_id: Mapped[int | None] = mapped_column(sa.ForeignKey("programmes.id"))
    serial: Mapped[str] = mapped_column(sa.String(24), default="")
    occurred_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    label: Mapped[str] = mapped_column(sa.String(300), default="")
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger)
    corrects_line_id: Mapped[int | None] = mapped_column(BigId, sa.ForeignKey("statement_lines.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    statement: Mapped[Statement] = relationship(back_populates="lines")


class CreditNote(Base):
    """Avoir at face value for the pass unused at end of validity (J+37)."""

    __tablename__ = "credit_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    programme_id: Mapped[int] = mapped_column(sa.ForeignKey("programmes.id"), unique=True)
    pass_count: Mapped[int]
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger)
    counts: Mapped[dict] = mapped_column(sa.JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
