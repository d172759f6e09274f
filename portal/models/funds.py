"""Funds of the mandate (issue 17): calls for funds, advances received, SEPA
payment runs and their lines, imported bank statements and their lines.

Every movement of funds is also an entry of the ledger (natures AVANCE,
VIREMENT, RETOUR_VIREMENT): these tables hold the supporting records.
"""
from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, UtcDateTime, str_enum, utcnow

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def _of_mandate(column, tenant):
    """Rows of the mandates where ``tenant`` is mandant or mandataire."""
    from portal.models.mandate import Mandate
    return column.in_(sa.select(Mandate.id).where(Mandate.tenant_clause(tenant)))


class FundCall(Base):
    """Appel de fonds: #APTIC asks the Métropole for an advance."""

    __tablename__ = "fund_calls"
    __table_args__ = (sa.UniqueConstraint("mandate_id", "reference"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mandate_id: Mapped[int] = mapped_column(sa.ForeignKey("mandates.id"), index=True)
    reference: Mapped[str] = mapped_column(sa.String(80))
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger)
    called_on: Mapped[dt.date] = mapped_column(sa.Date)
    note: Mapped[str] = mapped_column(sa.String(500), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    @classmethod
    def tenant_clause(cls, tenant):
        return _of_mandate(cls.mandate_id, tenant)


class FundAdvance(Base):
    """Avance reçue de la Métropole (date, amount, bank reference)."""

    __tablename__ = "fund_advances"
    __table_args__ = (sa.UniqueConstraint("mandate_id", "reference"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mandate_id: Mapped[int] = mapped_column(sa.ForeignKey("mandates.id"), index=True)
    fund_call_id: Mapped[int | None] = mapped_column(sa.ForeignKey("fund_calls.id"))
    reference: Mapped[str] = mapped_column(sa.String(80))
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger)
    received_on: Mapped[dt.date] = mapped_column(sa.Date)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    fund_call = relationship("FundCall")

    @classmethod
    def tenant_clause(cls, tenant):
        return _of_mandate(cls.mandate_id, tenant)


class RunStatus(str, enum.Enum):
    PREPAREE = "preparee"
    EXPORTEE = "exportee"

    @property
    def label(self) -> str:
        return {"preparee": "préparée", "exportee": "exportée (immuable)"}[self.value]


class PaymentRun(Base):
    """Campagne de virements SEPA: one pain.001 file, immutable once exported."""

    __tablename__ = "payment_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    mandate_id: Mapped[int] = mapped_column(sa.ForeignKey("mandates.id"), index=True)
    status: Mapped[RunStatus] = mapped_column(str_enum(RunStatus, "run_status"),
                                              default=RunStatus.PREPAREE)
    message_id: Mapped[str] = mapped_column(sa.String(35), unique=True)
    execution_date: Mapped[dt.date] = mapped_column(sa.Date)
    debtor_name: Mapped[str] = mapped_column(sa.String(140))
    debtor_iban: Mapped[str] = mapped_column(sa.String(34))
    debtor_bic: Mapped[str] = mapped_column(sa.String(11))
    total_cents: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    exported_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    exported_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    file_sha256: Mapped[str] = mapped_column(sa.String(64), default="")
    file_xml: Mapped[str] = mapped_column(sa.Text, default="")

    lines: Mapped[list[PaymentLine]] = relationship(back_populates="run",
                                                    order_by="PaymentLine.id")

    @classmethod
    def tenant_clause(cls, tenant):
        return _of_mandate(cls.mandate_id, tenant)


class LineStatus(str, enum.Enum):
    EMIS = "emis"
    PAYE = "paye"
    RETOURNE = "retourne"

    @property
    def label(self) -> str:
        return {"emis": "émis", "paye": "débité", "retourne": "retourné"}[self.value]


class PaymentLine(Base):
    """One credit transfer of a run: one validated statement of one opérateur.
    ``attempt`` numbers the payments of a statement (a returned transfer lets
    a later run pay it again, never twice: UNIQUE(statement_id, attempt))."""

    __tablename__ = "payment_lines"
    __table_args__ = (sa.UniqueConstraint("statement_id", "attempt"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("payment_runs.id"), index=True)
    statement_id: Mapped[int] = mapped_column(sa.ForeignKey("statements.id"), index=True)
    structure_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    attempt: Mapped[int] = mapped_column(default=1)
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger)
    end_to_end_id: Mapped[str] = mapped_column(sa.String(35), unique=True)
    creditor_name: Mapped[str] = mapped_column(sa.String(140))
    iban: Mapped[str] = mapped_column(sa.String(34))
    bic: Mapped[str] = mapped_column(sa.String(11))
    remittance: Mapped[str] = mapped_column(sa.String(140))
    status: Mapped[LineStatus] = mapped_column(str_enum(LineStatus, "payment_line_status"),
                                               default=LineStatus.EMIS)
    booked_on: Mapped[dt.date | None] = mapped_column(sa.Date)
    bank_reference: Mapped[str] = mapped_column(sa.String(100), default="")
    returned_on: Mapped[dt.date | None] = mapped_column(sa.Date)
    return_reason: Mapped[str] = mapped_column(sa.String(300), default="")

    run: Mapped[PaymentRun] = relationship(back_populates="lines")
    statement = relationship("Statement")
    structure = relationship("Tenant")

    @classmethod
    def tenant_clause(cls, tenant):
        if tenant.kind.value == "structure":
            return cls.structure_id == tenant.id
        return cls.run_id.in_(sa.select(PaymentRun.id).where(PaymentRun.tenant_clause(tenant)))


class BankImport(Base):
    """An imported bank statement file (camt.053); the same file twice is refused
    as already imported (UNIQUE file_sha256) and changes nothing."""

    __tablename__ = "bank_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    mandate_id: Mapped[int] = mapped_column(sa.ForeignKey("mandates.id"), index=True)
    file_sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    filename: Mapped[str] = mapped_column(sa.String(200), default="")
    message_id: Mapped[str] = mapped_column(sa.String(35), default="")
    account_iban: Mapped[str] = mapped_column(sa.String(34), default="")
    paid: Mapped[int] = mapped_column(default=0)
    returned: Mapped[int] = mapped_column(default=0)
    unknown: Mapped[int] = mapped_column(default=0)
    already: Mapped[int] = mapped_column(default=0)
    imported_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    imported_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    lines: Mapped[list[BankLine]] = relationship(back_populates="bank_import",
                                                 order_by="BankLine.id")

    @classmethod
    def tenant_clause(cls, tenant):
        return _of_mandate(cls.mandate_id, tenant)


class BankOutcome(str, enum.Enum):
    PAYE = "paye"            # debit matched to its payment line: statement paid
    RETOUR = "retour"        # returned transfer: statement re-opened
    INCONNU = "inconnu"      # matches nothing: listed for #APTIC
    DEJA = "deja"            # already processed by an earlier file

    @property
    def label(self) -> str:
        return {"paye": "payé", "retour": "virement retourné", "inconnu": "non rapproché",
                "deja": "déjà traité"}[self.value]


class BankLine(Base):
    """One entry (transaction) of an imported bank statement and what it did.
    ``entry_key`` (bank reference + end-to-end id + direction) is unique, so an
    entry repeated in a later file is not applied twice."""

    __tablename__ = "bank_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int] = mapped_column(sa.ForeignKey("bank_imports.id"), index=True)
    entry_key: Mapped[str | None] = mapped_column(sa.String(200), unique=True)
    credit_debit: Mapped[str] = mapped_column(sa.String(4))
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger)
    booked_on: Mapped[dt.date] = mapped_column(sa.Date)
    end_to_end_id: Mapped[str] = mapped_column(sa.String(35), default="")
    bank_reference: Mapped[str] = mapped_column(sa.String(100), default="")
    return_reason: Mapped[str] = mapped_column(sa.String(300), default="")
    label: Mapped[str] = mapped_column(sa.String(300), default="")
    outcome: Mapped[BankOutcome] = mapped_column(str_enum(BankOutcome, "bank_outcome"))
    payment_line_id: Mapped[int | None] = mapped_column(sa.ForeignKey("payment_lines.id"))

    bank_import: Mapped[BankImport] = relationship(back_populates="lines")
    payment_line = relationship("PaymentLine")
